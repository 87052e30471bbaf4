"""The tracked outputs of a finished run against the commit: exact on the CPU that built them.

    python -m brainlike.checks committed [WORKSPACE]   # after `make run` (CI)
    python -m brainlike.checks host [--record]         # this CPU; --record: it built the outputs

Every float the pipeline writes is deterministic for a fixed CPU model and thread count, but
torch (oneDNN, ATen, MKL) and the BLAS choose kernels by CPU model, so another CPU moves the
last bits and, from there, every float downstream (README, "Not across every CPU model").
The committed outputs were built on the CPU recorded in ``.ci/reference-host.json``. After a
run, ``committed``:

- on that CPU (the same vendor, family, model, instruction sets, cache and core count), fails
  when any tracked file changed or an untracked one appeared: byte for byte, as before;
- on another CPU, still fails on an untracked or deleted file, on any changed file that is
  not a metric (``metrics/``) or ``dvc.lock``, on a ``dvc.lock`` whose commands, parameters,
  input hashes (code, configuration, raw data: whatever no stage writes) or output paths
  differ (only the md5 of stage outputs may move), and on any number of a
  metric beyond the cross-CPU tolerances (:data:`CROSS_CPU`); strings and booleans (every
  verdict) must be equal. It names each number that moved. ``--values report`` lists the
  metrics beyond the tolerances without failing on them (the model zoo: a random Qwen twin's
  link at its threshold and the order of two of its atoms flip between CPU models).

Exit 0: reproduced; 1: something differs (each listed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from .._utils.atomic import write_text_atomic
from .outputs import _git
from .reproduce import bytes_differences

REFERENCE = Path(".ci") / "reference-host.json"
# Instruction sets that decide which kernels torch, oneDNN, MKL and OpenBLAS run.
ISA_FLAGS = frozenset({
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512dq", "avx512cd", "avx512bw",
    "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512_vbmi", "avx512_vbmi2", "avx512ifma",
    "avx512_bitalg", "avx512_vpopcntdq", "amx_tile", "amx_bf16", "amx_int8",
})
# What another CPU model may move in a metric (a number is equal when |a - b| <= abs + rel * |b|;
# a count when |a - b| <= count * max(|a|, |b|)). Measured on the default, an AMD EPYC (Zen 4)
# against an Intel Xeon with AVX-512/AMX (README, "Not across every CPU model"): the text models'
# numbers moved by at most 0.0066 (an effective-atom count of 49.09), their counts by 1.1 %.
CROSS_CPU = {"rel": 0.02, "abs": 0.02, "count": 0.03}


def host_signature() -> dict:
    """This machine's CPU as the kernels see it: vendor, family, model, instruction sets, cache, cores."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return {
        "vendor": info.get("vendor_id", ""),
        "family": info.get("cpu family", ""),
        "model": info.get("model", ""),
        "model_name": info.get("model name", ""),
        "isa": sorted(ISA_FLAGS & set(info.get("flags", "").split())),
        "cache": info.get("cache size", ""),
        "cpus": os.cpu_count(),
    }


def reference_signature(workspace: Path) -> dict | None:
    path = workspace / REFERENCE
    return json.loads(path.read_text()) if path.is_file() else None


def _committed_bytes(rel: str, workspace: Path) -> bytes:
    return _git(["show", f"HEAD:{rel}"], workspace, text=False).stdout  # bytes: Parquet is not text


def changed_files(workspace: Path) -> list[tuple[str, str]]:
    """(status, path) of every changed, deleted or untracked file (``git status --porcelain``)."""
    out = _git(["status", "--porcelain", "-z", "--untracked-files=all"], workspace).stdout
    return [(e[:2], e[3:]) for e in out.split("\0") if e]


def lock_structure_differences(committed: dict, current: dict) -> list[str]:
    """What differs in ``dvc.lock`` beyond the md5 of stage outputs: stages, commands, parameters,
    the hashes of every dependency that no stage writes (code, configuration, raw data) and the
    output paths."""
    a, b = committed.get("stages", {}), current.get("stages", {})
    outs = {o["path"].rstrip("/") for st in a.values() for o in st.get("outs", [])}

    def written(path: str) -> bool:  # a stage output, inside one, or a folder holding one
        path = path.rstrip("/")
        return any(o == path or o.startswith(path + "/") or path.startswith(o + "/") for o in outs)

    out = [f"dvc.lock: stage {s} only {'committed' if s in a else 'after the run'}" for s in sorted(set(a) ^ set(b))]
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.get("cmd") != y.get("cmd"):
            out.append(f"dvc.lock {name}: cmd {x.get('cmd')!r} != {y.get('cmd')!r}")
        if x.get("params") != y.get("params"):
            out.append(f"dvc.lock {name}: params differ")
        dx = {d["path"]: d for d in x.get("deps", [])}
        dy = {d["path"]: d for d in y.get("deps", [])}
        if set(dx) != set(dy):
            out.append(f"dvc.lock {name}: deps {sorted(set(dx) ^ set(dy))} only on one side")
        out += [f"dvc.lock {name}: input {p} committed md5 {dx[p].get('md5')} != {dy[p].get('md5')}"
                for p in sorted(set(dx) & set(dy)) if not written(p) and dx[p].get("md5") != dy[p].get("md5")]
        ox = sorted(o["path"] for o in x.get("outs", []))
        oy = sorted(o["path"] for o in y.get("outs", []))
        if ox != oy:
            out.append(f"dvc.lock {name}: outs {ox} != {oy}")
    return out


def committed_differences(workspace: str | Path, exact: bool | None = None,
                          moved: list[str] | None = None) -> tuple[list[str], list[str], bool]:
    """Check a finished run's tracked outputs against ``HEAD``.

    Parameters
    ----------
    moved : list, optional
        On another CPU, collect the metrics' differences beyond the tolerances here instead of
        failing on them (``--values report``).

    Returns
    -------
    failures : list of str
        One line per reason to fail.
    within : list of str
        Files that changed within the cross-CPU tolerances (empty when exact).
    exact : bool
        Whether the comparison was byte for byte (this CPU is the reference, or there is none).
    """
    ws = Path(workspace).resolve()
    if exact is None:
        ref = reference_signature(ws)
        exact = ref is None or ref == host_signature()
    failures, within = [], []
    for status, rel in changed_files(ws):
        if status == "??":
            failures.append(f"{rel}: untracked file left by the run")
        elif "D" in status:
            failures.append(f"{rel}: deleted by the run")
        elif exact:
            failures.append(f"{rel}: changed")
        elif rel == "dvc.lock":
            diffs = lock_structure_differences(yaml.safe_load(_committed_bytes("dvc.lock", ws)) or {},
                                               yaml.safe_load((ws / rel).read_text()) or {})
            (failures.extend(diffs) if diffs else within.append(rel))
        elif rel.startswith("metrics/"):
            diffs = bytes_differences(Path(rel).suffix, _committed_bytes(rel, ws), (ws / rel).read_bytes(),
                                      CROSS_CPU["rel"], CROSS_CPU["abs"], CROSS_CPU["count"])
            if not diffs:
                within.append(rel)
            (failures if moved is None else moved).extend(f"{rel}{d}" for d in diffs)
        else:
            failures.append(f"{rel}: changed (not a metric: must be the same on every CPU)")
    return failures, within, exact


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks committed",
                                 description="tracked outputs after a run against HEAD: exact on the reference CPU")
    ap.add_argument("workspace", nargs="?", default=".")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--exact", action="store_true", help="byte for byte whatever the CPU")
    how.add_argument("--cross-cpu", action="store_true",
                     help="the other-CPU comparison even on the reference CPU (to check a run made with "
                          "other kernels, e.g. ATEN_CPU_CAPABILITY=default)")
    ap.add_argument("--values", choices=("fail", "report"), default="fail",
                    help="on another CPU, fail on a metric beyond the tolerances (default) or only list it "
                         "(for outputs whose links or atom order flip with the last bits; README)")
    args = ap.parse_args(argv)
    ws = Path(args.workspace)
    moved: list[str] | None = [] if args.values == "report" else None
    failures, within, exact = committed_differences(ws, True if args.exact else False if args.cross_cpu else None,
                                                    moved)
    host = host_signature()
    ref = reference_signature(ws.resolve())
    print(f"committed: this CPU {host['vendor']} family {host['family']} model {host['model']} "
          f"({host['model_name']}, {host['cpus']} cores); the outputs were built on "
          + ("an unrecorded CPU" if ref is None else f"{ref['vendor']} family {ref['family']} model {ref['model']} "
             f"({ref['model_name']}, {ref['cpus']} cores)"))
    mode = "byte for byte" if exact else (f"another CPU: numbers of metrics within rel {CROSS_CPU['rel']}, "
                                          f"abs {CROSS_CPU['abs']}, counts {CROSS_CPU['count']}; the rest exact")
    if moved:
        print(f"committed: {len(moved)} number(s) of metrics moved beyond the cross-CPU tolerances "
              "(reported, not failed: --values report):")
        for line in moved:
            print(f"  {line}")
    if failures:
        print(f"committed: the run's tracked outputs differ from HEAD ({mode}):", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    if within:
        print(f"committed: {len(within)} file(s) moved within the cross-CPU tolerances ({mode}): "
              + ", ".join(within))
    else:
        print("committed: the run reproduced every tracked output byte for byte")
    return 0


def host_main(argv: Sequence[str] | None = None) -> int:
    """``host``: print this CPU's signature; ``--record`` writes it as the reference."""
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks host",
                                 description="this CPU's signature; --record: the committed outputs were built here")
    ap.add_argument("workspace", nargs="?", default=".")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    sig = host_signature()
    text = json.dumps(sig, indent=2) + "\n"
    if args.record:
        path = Path(args.workspace) / REFERENCE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
        print(f"host: recorded this CPU as the reference in {REFERENCE}")
    else:
        ref = reference_signature(Path(args.workspace).resolve())
        print(text, end="")
        print("host: " + ("no reference recorded" if ref is None else
                          "this is the reference CPU" if ref == sig else "not the reference CPU"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
