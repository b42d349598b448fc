"""`scripts/slurm-one-node.sh stop` needs its folder and kills only the daemons it started
(issue 20, finding 5): a pids file naming any other process leaves that process alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-one-node.sh"


def test_stop_without_a_folder_is_refused():
    done = subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


def detached(*command) -> int:
    """PID of ``command`` started in the background by a shell that exits: not our child, so
    it is reaped when killed, as a daemon would be."""
    line = subprocess.run(["bash", "-c", '"$@" >/dev/null 2>&1 & echo $!', "_", *command],
                          capture_output=True, text=True, check=True).stdout
    return int(line)


def alive(pid: int) -> bool:
    """Running, not a zombie: where no init reaps orphans (a container), a killed orphan stays
    in the process table as a zombie, which ``kill -0`` still finds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stop_kills_a_listed_daemon_but_not_another_process_listed_under_its_name(tmp_path):
    daemon = tmp_path / "slurmd"
    shutil.copy(shutil.which("sleep"), daemon)  # a process whose command is slurmd
    ours = detached(str(daemon), "300")
    other = detached("sleep", "300")  # e.g. someone's process, its PID planted in the file
    try:
        (tmp_path / "pids").write_text(f"slurmd {ours}\nslurmctld {other}\n")
        done = subprocess.run(["bash", str(SCRIPT), "stop", str(tmp_path)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert not alive(ours)
        assert alive(other) and f"slurmctld {other}" in done.stderr
        assert not (tmp_path / "pids").exists()
    finally:
        for pid in (ours, other):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
