"""Stage scripts (``pipelines/*.py``, what dvc.yaml runs) share one shape, so a new stage copies any of them."""

from __future__ import annotations

import ast
from pathlib import Path


def test_every_stage_script_has_one_shape():
    """Each ``pipelines/<stage>.py``: ``main(argv)`` parsing ``--params``, run through ``run_stage``."""
    scripts = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.py"))
    assert len(scripts) >= 10
    for script in scripts:
        tree = ast.parse(script.read_text())
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert mains and [a.arg for a in mains[0].args.args] == ["argv"], f"{script.name}: main(argv)"
        flags = {c.value for c in ast.walk(mains[0]) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        assert "--params" in flags, f"{script.name}: no --params option"
        assert "run_stage(main)" in ast.unparse(tree.body[-1]), f"{script.name}: not run through run_stage"


# the library layer each stage's code lives in (its own and every lower layer can run in it)
_STAGE_LAYER = {
    "atlases": "data", "prepare": "data", "validate": "validation", "extract": "activations",
    "patterns": "patterns", "encode": "encoding", "encode_baseline": "encoding", "encode_bounds": "encoding",
    "spins": "networks", "networks": "networks", "networks_bounds": "networks", "metrics": "metrics", "register": "registry",
    "report": "report",
}


def test_every_stage_depends_on_all_code_it_can_run():
    """An edit of code a stage can import re-runs it: its dvc.yaml deps hold the package's
    ``__init__.py``, ``_utils`` and ``config`` and every layer of the import contract (pyproject)
    up to its own, so a fresh clone cannot skip a stage whose code changed and pass CI's clean
    ``git status`` with stale outputs. ``materialise`` lists its files (dvc.yaml says why)."""
    import tomllib

    import yaml

    root = Path(__file__).resolve().parents[1]
    contract = next(c for c in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
                    if c["name"].startswith("Pipeline layers"))
    layers = [name.strip("()").removeprefix("brainlike.") for name in reversed(contract["layers"])]
    layers = [name for name in layers if name not in ("cli", "checks")]
    assert layers[0] == "data" and layers[-1] == "report"
    base = {"src/brainlike/__init__.py", "src/brainlike/_utils", "src/brainlike/config"}
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(_STAGE_LAYER) | {"materialise"}
    for name, stage in stages.items():
        deps = set(stage.get("do", stage)["deps"])
        code = {d for d in deps if d.startswith("src/")}
        assert all((root / d).exists() for d in code), f"{name}: a code dep that does not exist"
        if name == "materialise":
            continue
        own = layers.index(_STAGE_LAYER[name])
        want = base | {f"src/brainlike/{layer}" for layer in layers[: own + 1]}
        assert want <= deps, f"{name}: dvc.yaml deps miss {sorted(want - deps)}"
