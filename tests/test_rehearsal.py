"""The CI-sized rehearsal of the real path (`bench rehearse --scale 0.05`): stand-in archives
fetched over local HTTPS, verified, trained at every dataset and row, reported, checked and
judged, every record and report labelled REHEARSAL; the server stopped by its PID."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import store
from tests.conftest import REPO


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    work = tmp_path_factory.mktemp("rehearsal")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSBOOST_")}
    done = subprocess.run([sys.executable, "-m", "bench", "rehearse", "--scale", "0.05",
                           "--device", "cpu",
                           "--work", str(work)], cwd=REPO, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(REPO)}, timeout=1800)
    return work, done


@pytest.mark.slow
def test_the_ci_sized_rehearsal_runs_fetch_to_claims_and_times_each_stage(rehearsal):
    work, done = rehearsal
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name in ("build", "fetch", "verify", "reproduce", "report", "check", "claims"):
        assert f"== {name}: exit" in done.stdout and "peak memory" in done.stdout, name
    # check and claims gave verdicts (exit 0 or 1), not refusals (2)
    assert "== check: exit 2" not in done.stdout and "== claims: exit 2" not in done.stdout
    # fetched over HTTPS from the local server, which is gone
    log = (work / "server.log").read_text()
    assert "GET /xlsa17.zip" in log and "GET /cvpr18xian.zip" in log
    pid = int(done.stdout.split("(PID ")[1].split(")")[0])
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
def test_every_rehearsal_record_and_report_says_rehearsal(rehearsal):
    work, done = rehearsal
    records = store.load_records(work / "results" / "rehearsal")
    assert len(records) == 5 * 4 * 2
    assert {r["data"]["kind"] for r in records} == {"rehearsal"}
    assert not any(r["synthetic"] for r in records)
    reports = work / "reports" / "rehearsal"
    for name in ("table2.md", "table3.md", "table4.md", "claims.md"):
        text = (reports / name).read_text()
        assert "REHEARSAL" in text.splitlines()[0], name  # in the title
    table2 = (reports / "table2.md").read_text()
    assert "rank of the reproduction" in table2 and "f-CLSWGAN" in table2  # published rows
    assert "REHEARSAL: stand-in data, not the paper's" in done.stdout  # the check's verdict
