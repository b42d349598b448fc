"""Types are checked to the leaves (issue 20, findings 3 and 5): a record, a lock or an option
wrong anywhere inside gives one `error:` line naming the file and the field, exit 2, never a
traceback or exit 1 (the code for "a check failed")."""

# ruff: noqa: F811 - the results-folder fixtures of tests/test_untrusted.py, reused
from __future__ import annotations

import csv
import json

import pytest

from bench import store
from tests.test_untrusted import (  # noqa: F401 - fixtures
    bench,
    folder,
    one_error_line,
    run_args,
    sweep_folder,
    tamper,
)


def _put(*path, value):
    """A change setting the node at ``path`` (keys may hold dots, e.g. file names)."""
    def change(record):
        node = record
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = value
    return change


def _file_entry(value):
    def change(record):
        first = next(iter(record["data"]["files"]))
        record["data"]["files"][first] = value
    return change


@pytest.mark.parametrize(("change", "field"), [
    (_put("data", "kind", value=["real"]), "data.kind"),
    (_file_entry(5), "data.files."),
    (_put("deviations", "hidden", value=5), "deviations.hidden"),
    (_put("provenance", "finished", value=5), "provenance.finished"),
    (_put("provenance", "precision", value=["x"]), "provenance.precision"),
    (_put("provenance", "git_changes", value=5), "provenance.git_changes"),
    (_put("config", "hidden", value=[1, 2]), "config.hidden"),
    (_put("metrics", "czsl", "paper", value={}), "metrics.czsl.paper"),  # found by seed 1
    (_put("profile", value="smoke\n# injected heading"), "profile"),
    (_put("metrics", "paper", '=HYPERLINK("http://x","y")', value=0.5), "metrics.paper.=HYPER"),
])
def test_a_wrong_type_inside_a_record_is_one_line_naming_the_file_and_field(folder, tmp_path,
                                                                            change, field):
    tamper(folder, change)
    out = tmp_path / "out"
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", out))
    assert "record.json: field '" + field in line
    assert not out.exists()


def test_runs_csv_header_cells_are_neutralised(folder, monkeypatch):
    # The schema refuses such metric names; the writer quotes header cells all the same.
    flatten = store.flatten
    monkeypatch.setattr(store, "flatten", lambda r: {**flatten(r), '=HYPERLINK("x")': 1})
    store.write_runs_csv(folder)
    with open(folder / store.RUNS_CSV) as f:
        assert "'=HYPERLINK(\"x\")" in next(csv.reader(f))


def test_a_folder_where_runs_csv_or_a_record_is_written_is_one_line(folder):
    from vsboost.errors import UserError

    (run,) = store.run_dirs(folder)
    record = json.loads((run / store.RECORD).read_text())
    (folder / store.RUNS_CSV).unlink()
    (folder / store.RUNS_CSV).mkdir()
    with pytest.raises(UserError, match=r"runs\.csv: expected a file .*found a folder"):
        store.write_runs_csv(folder)
    (run / store.RECORD).unlink()
    (run / store.RECORD).mkdir()
    with pytest.raises(UserError, match=r"record\.json: expected a file .*found a folder"):
        store.write_record(run, record)


def test_a_lock_whose_archive_is_a_list_is_one_line(tmp_path):
    lock = json.loads(open("datasets.lock").read())
    first = next(iter(lock["files"]))
    lock["files"][first]["archive"] = ["x"]
    (tmp_path / "datasets.lock").write_text(json.dumps(lock))
    line = one_error_line(bench("data", "verify", "-d", "APY", "--data-root", tmp_path / "d",
                                "--lock", tmp_path / "datasets.lock"))
    assert "datasets.lock" in line and f"files.{first}.archive" in line


def test_a_seed_index_beyond_what_a_record_holds_is_refused_before_training(data_root,
                                                                           tmp_path):
    line = one_error_line(bench(*run_args(data_root, tmp_path / "results", "--seed-index",
                                          1000)))
    assert "seed index 1000: expected 0..999" in line
    assert not (tmp_path / "results" / "demo").exists()
