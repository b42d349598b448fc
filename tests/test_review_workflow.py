"""The pull-request workflow runs the regression check whenever a number it judges can change."""

import fnmatch
import re
from pathlib import Path

from vsboost.fingerprint import METHOD_MODULES

WORKFLOW = Path(__file__).parents[1] / ".github" / "workflows" / "review.yml"
# What makes the records, the cells and the verdicts the check compares, besides the method.
HARNESS = ("bench/runner.py", "bench/sweep.py", "bench/store.py", "bench/schema.py",
           "bench/cells.py", "bench/tables.py", "bench/stats.py", "bench/check.py",
           "bench/compare.py", "bench/regression.py")


def filter_globs() -> list[str]:
    text = WORKFLOW.read_text()
    block = text.split("numbers:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\s+- '([^']+)'$", block, re.M)


def test_the_regress_job_runs_on_any_change_that_can_move_a_number():
    globs = filter_globs()
    paths = [f"{m.replace('.', '/')}.py" for m in METHOD_MODULES] + list(HARNESS) + [
        "vsboost/synthetic.py", "pyproject.toml", "noxfile.py",
        "results/regress-baseline/APY-full-s0-x-y/record.json",
        "results/regress-machines/aten-default/APY-full-s0-x-y/record.json"]
    missed = [p for p in paths if not any(fnmatch.fnmatch(p, g) for g in globs)]
    assert missed == []
    assert not any(fnmatch.fnmatch("README.md", g) for g in globs)
    assert "if: needs.changes.outputs.numbers == 'true'" in WORKFLOW.read_text()
