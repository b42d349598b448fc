"""The docs say only what exists: every `bench ...` / `python -m ...` command in README.md's code
blocks parses, every `nox -s` session they name exists, and every repository path README.md and
docs/*.md name is in the repository (generated outputs excepted, by their documented folders)."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

from bench.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Top-level entries of this repository: a path the docs name that starts with one is ours.
OURS = ("vsboost/", "bench/", "tests/", "docs/", "benchmarks/", "results/", "reports/",
        ".github/", "noxfile.py", "pyproject.toml", "datasets.lock")
# Written by commands, not committed: the data, the real reproduction's outputs, the regression
# check's fresh report (its folder exists, its tables appear only after `nox -s regress`).
GENERATED = ("data/", "results/paper", "reports/paper", "reports/regress/check.md",
             "reports/regress/table", "reports/regress/curves", "reports/regress/tsne",
             "reports/perf-cuda.json", "reports/gpu_check.txt", "results/<", "reports/<")


def code_lines(text: str) -> list[str]:
    """Lines of the fenced code blocks, comments dropped."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():  # continuation lines joined
            line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if line and not line.startswith("#"):
                lines.extend(part.strip() for part in line.split("&&"))
    return lines


README_LINES = code_lines((ROOT / "README.md").read_text())
BENCH = [line for line in README_LINES if line.startswith("bench ")]


def test_the_readme_has_commands_to_check():
    assert len(BENCH) >= 8
    assert any(line.startswith("python -m vsboost") for line in README_LINES)


def parse(args: list[str]) -> click.Context:
    """Parse a `bench` command line the way running it would (command names, option names and
    values, their callbacks, extra arguments) without invoking it: no training, no data read."""
    ctx = cli.make_context("bench", list(args))
    command: click.Command = cli
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args, 8.1 needs it
        warnings.simplefilter("ignore", DeprecationWarning)
        while isinstance(command, click.Group) and [*ctx.protected_args, *ctx.args]:
            name, command, rest = command.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
            ctx = command.make_context(name, rest, parent=ctx)
    return ctx


@pytest.mark.parametrize("line", BENCH)
def test_every_bench_command_in_the_readme_parses(line):
    parse(shlex.split(line)[1:])


@pytest.mark.parametrize("wrong", [["data", "fetch", "APY"], ["check", "--nope"],
                                   ["table4", "--datasets", "CUB,X/Y"], ["nope"]])
def test_the_parse_check_refuses_what_the_cli_refuses(wrong):
    with pytest.raises(click.UsageError):
        parse(wrong)


def test_the_python_m_vsboost_command_in_the_readme_parses(capsys):
    from vsboost import __main__ as entry

    for line in README_LINES:
        if line.startswith("python -m vsboost"):
            args = shlex.split(line)[3:]
            with pytest.raises(SystemExit) as done:
                entry.main([*args, "--help"])
            assert done.value.code == 0, line


def test_every_nox_session_the_docs_name_exists():
    nox = pytest.importorskip("nox")
    import noxfile  # noqa: F401 - registers the sessions

    registered = set(nox.registry.get())
    named = {m for path in DOCS for m in re.findall(r"nox -s ([a-z]+(?: [a-z]+)*)",
                                                     path.read_text())}
    sessions = {s for group in named for s in group.split() if s not in ("pip", "install")}
    assert sessions and sessions <= registered, sessions - registered


def repository_paths(text: str) -> set[str]:
    """Paths of this repository named in `code spans` or markdown links."""
    spans = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)#\s]+)", text)
    out = set()
    for span in spans:
        span = span.strip().rstrip(".,;:").split("#")[0]
        if span.startswith(OURS) and not span.startswith(GENERATED) and "<" not in span:
            out.add(span)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_the_docs_name_exists(doc):
    text = doc.read_text()
    missing = []
    for rel in sorted(repository_paths(text)):
        found = list(ROOT.glob(rel)) if any(c in rel for c in "*?[") else [ROOT / rel]
        if not any(p.exists() for p in found):
            missing.append(rel)
    # markdown links between doc pages are relative to the page
    for link in re.findall(r"\]\(([a-z_-]+\.md)", text):
        if not (doc.parent / link).exists():
            missing.append(link)
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_path_check_catches_a_wrong_path():
    assert repository_paths("see `vsboost/precision.py` and [x](docs/none.md)") == {
        "vsboost/precision.py", "docs/none.md"}
    assert not (ROOT / "vsboost" / "precision.py").exists()
