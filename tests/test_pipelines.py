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
