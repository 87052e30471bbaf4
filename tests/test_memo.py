"""The memo of per-model work (build/memo): keys follow content, hits return what misses returned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlike._utils.memo import MEMO_ENV, Memo


def test_key_follows_the_inputs_content(tmp_path):
    memo = Memo("t", root=tmp_path)
    a, b = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    b.parent.mkdir()
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert memo.key(a) == memo.key(b)  # a file counts by its bytes, not its name or date
    b.write_bytes(b"other")
    assert memo.key(a) != memo.key(b)
    assert memo.key(tmp_path / "missing") != memo.key(a)
    x = np.arange(6, dtype=np.float32)
    assert memo.key(x) == memo.key(x.copy())
    assert memo.key(x) != memo.key(x.astype(np.float64))  # dtype
    assert memo.key(x) != memo.key(x.reshape(2, 3))  # shape
    assert memo.key("1") != memo.key(1) and memo.key([1, 2]) != memo.key([2, 1])
    df = pd.DataFrame({"atom": [0, 1], "dice": [0.2, 0.3]})
    assert memo.key(df) == memo.key(df.copy())
    assert memo.key(df) != memo.key(df.assign(dice=[0.2, 0.31]))
    assert memo.key({"a": 1, "b": 2}) == memo.key({"b": 2, "a": 1})
    assert memo.key({"a": 1}) != memo.key({"a": 2})
    with pytest.raises(TypeError, match="cannot hash a object"):
        memo.key(object())


def test_a_hit_returns_what_the_miss_returned(tmp_path, monkeypatch):
    memo = Memo("t", root=tmp_path)
    value = {"r": np.float32(0.25), "n": np.int64(3), "ci": (0.1, 0.4), "maps": np.ones((2, 3))}
    calls = []

    def compute():
        calls.append(1)
        return value

    first = memo(compute, "model-a", np.zeros(4))
    again = memo(compute, "model-a", np.zeros(4))
    assert len(calls) == 1
    assert type(again["r"]) is np.float32 and type(again["n"]) is np.int64 and again["ci"] == (0.1, 0.4)
    np.testing.assert_array_equal(again["maps"], first["maps"])
    memo(compute, "model-b", np.zeros(4))  # another input: computed
    assert len(calls) == 2
    # an unreadable entry is a miss, not an error
    for f in memo.folder.glob("*.pkl"):
        f.write_bytes(b"not a pickle")
    memo(compute, "model-a", np.zeros(4))
    assert len(calls) == 3
    monkeypatch.setenv(MEMO_ENV, "0")
    off = Memo("t", root=tmp_path)
    off(compute, "model-a", np.zeros(4))
    assert len(calls) == 4
    assert not list(memo.folder.glob("*.tmp"))


def test_fill_computes_only_the_missing_keys_in_one_call(tmp_path, monkeypatch):
    memo = Memo("t", root=tmp_path)
    memo.put("b", "stored b")
    calls = []

    def compute(missing):
        calls.append(list(missing))
        return [f"new {i}" for i in missing]

    assert memo.fill(["a", "b", "c"], compute) == ["new 0", "stored b", "new 2"]
    assert calls == [[0, 2]]  # one call for every miss, in order
    assert memo.fill(["a", "b", "c"], compute) == ["new 0", "stored b", "new 2"]
    assert calls == [[0, 2]]  # everything stored: no call at all
    monkeypatch.setenv(MEMO_ENV, "0")
    off = Memo("t", root=tmp_path)
    assert off.fill(["a", "b"], compute) == ["new 0", "new 1"] and calls[-1] == [0, 1]


def test_a_new_version_of_the_code_forgets_the_old_ones(tmp_path, monkeypatch):
    import brainlike._utils.memo as memo_mod

    old = Memo("t", root=tmp_path)
    old.put(old.key("x"), 1)
    assert old.get(old.key("x")) == 1
    monkeypatch.setattr(memo_mod, "code_digest", lambda: "f" * 64)
    new = Memo("t", root=tmp_path)
    assert new.get(new.key("x")) is None  # another version of the code: another key
    new.put(new.key("x"), 2)
    assert [p.name for p in tmp_path.iterdir()] == ["f" * 16]


def test_a_cell_is_kept_as_links_and_given_back_whole(tmp_path, monkeypatch):
    """put_dir keeps a folder's files as hard links (no second copy of the bytes) with a value;
    get_dir links them into a new folder; a miss, or the memo off, leaves nothing there."""
    import os

    memo = Memo("cells", root=tmp_path / "memo")
    src = tmp_path / "out" / "cell"
    (src / "sub").mkdir(parents=True)
    (src / "a.npz").write_bytes(b"a" * 100)
    (src / "sub" / "b.json").write_text("{}")
    memo.put_dir("k", src, {"r": np.float32(0.5)})
    entry = memo.folder / "k.d" / "files" / "a.npz"
    assert os.stat(entry).st_ino == os.stat(src / "a.npz").st_ino
    got = memo.get_dir("k", tmp_path / "back")
    assert type(got["r"]) is np.float32 and got["r"] == 0.5
    assert {f.relative_to(tmp_path / "back").as_posix() for f in (tmp_path / "back").rglob("*") if f.is_file()} == {
        "a.npz", "sub/b.json"}
    assert (tmp_path / "back" / "a.npz").read_bytes() == b"a" * 100
    assert memo.get_dir("other", tmp_path / "none") is None and not (tmp_path / "none").exists()
    (memo.folder / "k.d" / "value.pkl").write_bytes(b"broken")
    assert memo.get_dir("k", tmp_path / "broken") is None and not (tmp_path / "broken").exists()
    monkeypatch.setenv(MEMO_ENV, "0")
    off = Memo("cells", root=tmp_path / "memo")
    off.put_dir("k2", src, 1)
    assert off.get_dir("k2", tmp_path / "off") is None and not (memo.folder / "k2.d").exists()
