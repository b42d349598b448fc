"""Conventions every `bench` command shares: where things live (vsboost.settings), name-list
options, one error line and the exit codes, a light `bench --help`, the package's public API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import LAZY, cli
from vsboost import settings
from vsboost.errors import UserError

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "matplotlib", "sklearn", "pooch", "torch", "scipy")


def bench(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def python(code: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


# ===== a light command line =====

@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["run", "--help"]])
def test_help_imports_no_heavy_library(argv):
    done = python(
        "import sys\nfrom bench.cli import cli\n"
        f"try:\n    cli.main({argv!r}, prog_name='bench')\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_lazy_commands_show_their_own_one_line_help():
    for name, (_, text) in LAZY.items():
        assert cli.get_command(None, name).get_short_help_str(limit=120) == text, name


def test_import_vsboost_loads_no_torch_and_offers_its_api():
    done = python("import sys, vsboost\nassert 'torch' not in sys.modules\n"
                  "from vsboost import train\nassert train.__name__ == 'vsboost.train'\n"
                  "print(' '.join(vsboost.__all__))")
    assert done.returncode == 0, done.stderr
    import vsboost

    for name in done.stdout.split():
        assert getattr(vsboost, name) is not None
    assert {"load", "make_config", "seed_for", "Config", "RunResult", "UserError"} <= set(
        vsboost.__all__)


# ===== errors =====

def test_every_error_for_people_is_a_user_error_and_none_is_a_value_error():
    from bench.cells import ReportError
    from bench.check import CheckRefused
    from bench.datasets import DatasetError
    from bench.store import BenchError
    from vsboost.config import ConfigError
    from vsboost.data import DataError

    for kind in (ConfigError, DataError, DatasetError, BenchError, ReportError, CheckRefused):
        assert issubclass(kind, UserError) and not issubclass(kind, ValueError), kind


@pytest.mark.parametrize("args", [
    ["sweep", "--datasets", "APY,XYZ", "--dry-run"],
    ["sweep", "-d", "APY", "-r", "plain,best", "--dry-run"],
    ["sweep", "--seeds", "0"],
    ["data", "verify", "-d", "CUBB"],
])
def test_a_bad_option_is_one_error_line_and_exit_2(tmp_path, args):
    result = bench(*args, "--results", tmp_path) if args[0] == "sweep" else bench(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_dataset_lists_read_the_same_as_repeated_options_or_commas(tmp_path, data_root):
    def planned(*args):
        result = bench("sweep", *args, "--seeds", "1", "--dry-run", "--data-root", data_root,
                       "--results", tmp_path, "--profile", "smoke")
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines() if line.startswith("would run")]

    assert planned("-d", "APY", "-r", "plain", "-r", "sml") == planned(
        "--datasets", "APY", "--rows", "plain,sml") == [
        "would run APY plain seeds [0]", "would run APY sml seeds [0]"]


def test_submitit_launcher_without_submitit_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` now fails
    result = bench("sweep", "-d", "APY", "--launcher", "submitit", "--results", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pip install 'vsboost[cluster]'" in result.stderr


# ===== where things live =====

def test_locations_follow_the_option_then_the_environment_then_the_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in ("data", "synthetic", "archives", "results", "reports"):
        monkeypatch.delenv(settings.ENV[kind], raising=False)
        resolve = getattr(settings, "data_root" if kind == "data" else
                          "synthetic_root" if kind == "synthetic" else kind)
        assert resolve() == settings.DEFAULTS[kind] and not resolve().is_absolute()
        monkeypatch.setenv(settings.ENV[kind], str(tmp_path / "env"))
        assert resolve() == tmp_path / "env"
        assert resolve(tmp_path / "option") == tmp_path / "option"


def test_the_lock_falls_back_to_the_packaged_copy_and_is_never_rewritten_there(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(settings.ENV["lock"], raising=False)
    assert settings.lock() == settings.PACKAGED_LOCK
    assert json.loads(settings.PACKAGED_LOCK.read_text())["schema"] == 1
    assert settings.PACKAGED_LOCK.read_bytes() == (REPO / "datasets.lock").read_bytes()
    assert settings.writable_lock() == Path("datasets.lock")  # copied here first
    assert Path("datasets.lock").read_bytes() == settings.PACKAGED_LOCK.read_bytes()
    assert settings.lock() == Path("datasets.lock")
    monkeypatch.setenv(settings.ENV["lock"], str(tmp_path / "other.lock"))
    assert settings.lock() == tmp_path / "other.lock"


def test_data_verify_from_an_empty_folder_lists_the_missing_files_and_exits_1(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in ("data", "lock"):
        monkeypatch.delenv(settings.ENV[kind], raising=False)
    result = bench("data", "verify", "-d", "APY")
    assert result.exit_code == 1, result.output
    assert "data/xlsa17/APY/res101.mat: missing" in result.stderr
    assert "bench data fetch -d APY" in result.stderr
    assert list(tmp_path.iterdir()) == []  # verify writes nothing


def test_synthetic_data_is_written_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in ("synthetic", "results"):
        monkeypatch.delenv(settings.ENV[kind], raising=False)
    result = bench("sweep", "--synthetic", "--profile", "smoke", "-d", "APY", "-r", "plain",
                   "--seeds", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "synthetic" / "APY" / "res101.mat").is_file()
    assert "results/smoke-synthetic" in result.output
    assert not (tmp_path / "results").exists()  # a dry run writes no results


def test_the_core_imports_nothing_from_the_harness():
    import ast

    for path in sorted((Path(__file__).parents[1] / "vsboost").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "bench" or n.startswith("bench.") for n in names), path.name
