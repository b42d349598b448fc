"""Which torch the nox sessions install: the CPU build for the CPU sessions; for `reproduce`, the
CUDA build the machine's NVIDIA driver takes (a stand-in `nvidia-smi` on PATH simulates one), or
nothing under `nox --no-venv`; and the build check that refuses a torch of the other kind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

nox = pytest.importorskip("nox")
import noxfile  # noqa: E402
from bench import accelerator  # noqa: E402

ROOT = Path(noxfile.__file__).resolve().parent


class FakeSession:
    def __init__(self, venv_backend="virtualenv"):
        self.calls, self.venv_backend, self.posargs = [], venv_backend, []

    def install(self, *args):
        self.calls.append(("install", args))

    def run(self, *args, **kw):
        self.calls.append(("run", args))

    def log(self, *args):
        self.calls.append(("log", args))


def smi_on_path(monkeypatch, tmp_path, cuda: str | None) -> None:
    """A stand-in `nvidia-smi` alone on PATH, printing a driver of CUDA ``cuda`` (None: none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if cuda is not None:
        smi = bin_dir / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho '| NVIDIA-SMI 570.86.10   Driver Version: 570.86.10   "
                       f"CUDA Version: {cuda}     |'\n")
        smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_cpu_sessions_take_torch_from_the_cpu_index_and_check_the_build():
    session = FakeSession()
    noxfile.install(session)
    installs = [c[1] for c in session.calls if c[0] == "install"]
    assert installs == [("torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"),
                        ("-e", ".[test]")]
    assert ("run", ("python", "-m", "bench.accelerator", "--expect", "cpu")) in session.calls


@pytest.mark.parametrize(("cuda", "tag"), [("12.8", "cu128"), ("13.0", "cu128"),
                                           ("12.6", "cu126"), ("12.4", "cpu"), (None, "cpu")])
def test_reproduce_installs_the_torch_build_the_machines_driver_takes_before_training(
        monkeypatch, tmp_path, cuda, tag):
    smi_on_path(monkeypatch, tmp_path, cuda)
    session = FakeSession()
    noxfile.reproduce(session)
    pin = "torch==2.13.0" if tag == "cpu" else f"torch==2.13.0+{tag}"
    assert session.calls[1] == ("install", (pin, "--index-url",
                                            f"https://download.pytorch.org/whl/{tag}"))
    runs = [c[1] for c in session.calls if c[0] == "run"]
    expect = "cpu" if tag == "cpu" else "cuda"
    # The torch and the device are said before the first bench command.
    assert runs[0] == ("python", "-m", "bench.accelerator", "--expect", expect)
    assert runs[1][0] == "bench"


def test_an_old_driver_says_why_the_cpu_build_was_taken():
    build = accelerator.choose("| NVIDIA-SMI 470.1  Driver Version: 470.1  CUDA Version: 11.4 |")
    assert build.tag == "cpu" and "update the driver" in build.why


def test_no_venv_runs_in_the_users_environment_installing_nothing(monkeypatch, tmp_path):
    smi_on_path(monkeypatch, tmp_path, "12.8")
    session = FakeSession(venv_backend="none")
    noxfile.reproduce(session)
    assert not [c for c in session.calls if c[0] == "install"]
    assert [c[1] for c in session.calls if c[0] == "run"][0] == ("python", "-m",
                                                                "bench.accelerator")


FAKE_TORCH = """__version__ = {version!r}
class version:
    cuda = {cuda!r}
class cuda:
    is_available = staticmethod(lambda: False)
"""


@pytest.mark.parametrize(("version", "cuda", "expect", "code"), [
    ("2.13.0+cu128", "12.8", "cpu", 1), ("2.13.0+cpu", None, "cpu", 0),
    ("2.13.0+cpu", None, "cuda", 1), ("2.13.0+cu128", "12.8", "cuda", 0)])
def test_the_build_check_refuses_a_torch_of_the_other_kind(tmp_path, version, cuda, expect,
                                                           code):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(FAKE_TORCH.format(version=version, cuda=cuda))
    done = subprocess.run([sys.executable, "-m", "bench.accelerator", "--expect", expect],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert done.returncode == code, done.stderr
    assert version in done.stdout
    if code:
        assert done.stderr.startswith("error: expected the") and "remove .nox/" in done.stderr


def test_the_fuzz_session_draws_random_examples_with_the_seed_given():
    session = FakeSession()
    session.posargs = ["--hypothesis-seed=7"]
    noxfile.fuzz(session)
    _, args = session.calls[-1]
    assert args[0] == "pytest" and "--hypothesis-profile=random" in args
    assert args[-1] == "--hypothesis-seed=7"


def test_regress_passes_paths_to_its_shell_as_arguments_not_as_script_text(tmp_path):
    session = FakeSession()
    session.posargs = []
    session.create_tmp = lambda: str(tmp_path / "a dir; touch pwned")
    noxfile.regress(session)
    shells = [args for kind, args in session.calls if kind == "run" and args[0] == "bash"]
    assert shells
    for shell in shells:
        script = shell[shell.index("-c") + 1]
        assert "pwned" not in script
    assert any(str(tmp_path / "a dir; touch pwned") in " ".join(shell) for shell in shells)
