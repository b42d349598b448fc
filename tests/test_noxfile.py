"""The nox sessions install the CPU build of torch, and refuse to go on with a CUDA one."""

import subprocess
import sys

import pytest

nox = pytest.importorskip("nox")
import noxfile  # noqa: E402


class FakeSession:
    def __init__(self):
        self.calls = []

    def install(self, *args):
        self.calls.append(("install", args))

    def run(self, *args, **kw):
        self.calls.append(("run", args))


def test_install_takes_torch_from_the_cpu_index_and_checks_the_build():
    session = FakeSession()
    noxfile.install(session)
    first, check, package = session.calls
    assert first == ("install", ("torch==2.13.0", "--index-url",
                                 "https://download.pytorch.org/whl/cpu"))
    assert check[0] == "run" and check[1][:2] == ("python", "-c")
    assert package == ("install", ("-e", ".[test]"))


def test_the_build_check_refuses_a_cuda_torch_and_passes_a_cpu_one(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '2.13.0'\n"
                                      "class version:\n    cuda = '12.8'\n")
    code = noxfile.CPU_BUILD
    cuda = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert cuda.returncode == 1 and "is a CUDA build" in cuda.stderr
    (fake / "__init__.py").write_text("__version__ = '2.13.0+cpu'\n"
                                      "class version:\n    cuda = None\n")
    cpu = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True)
    assert cpu.returncode == 0


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
    (shell,) = [args for kind, args in session.calls if kind == "run" and args[0] == "bash"]
    script = shell[shell.index("-c") + 1]
    assert "pwned" not in script and str(tmp_path / "a dir; touch pwned") in " ".join(shell)
