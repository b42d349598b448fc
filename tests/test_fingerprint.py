"""Runs know their code: the fingerprint ignores comments, docstrings and layout, not code, and
a sweep retrains a run whose record another code made, keeping the old run aside."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import store
from bench.cli import cli
from vsboost import fingerprint

# VS-Boost's own module, where its loss assembly lives (one of the modules fingerprinted).
TRAIN = (Path(fingerprint.__file__).parent / "methods" / "vsboost.py").read_text()
LINE = "        loss = torch.zeros_like(like)\n"
TINY = ["gan_epochs=1", "steps_per_epoch=1", "hidden=16", "enc_dim=16", "syn_num=5",
        "cls_epochs=1", "n_way=2", "k_shot=4"]


def test_comments_docstrings_and_layout_leave_the_fingerprint_unchanged():
    assert LINE in TRAIN
    reworded = TRAIN.replace('"""VS-Boost (Li et al.', '"""VS-Boost, reworded (Li et al.', 1)
    commented = TRAIN.replace(LINE, "        # a comment\n" + LINE.rstrip() + "  # why\n\n", 1)
    requoted = TRAIN.replace('name = "vsboost"', "name = ( 'vsboost' )")
    for same in (reworded, commented, requoted):
        assert same != TRAIN
        assert fingerprint.syntax(same) == fingerprint.syntax(TRAIN)


def test_a_one_line_edit_of_the_trainer_changes_the_fingerprint():
    edited = TRAIN.replace(LINE, LINE.replace("zeros_like", "ones_like"), 1)
    assert fingerprint.syntax(edited) != fingerprint.syntax(TRAIN)


def test_the_fingerprint_names_each_module_and_is_a_sha256():
    code = fingerprint.code()
    assert len(code) == 64 and int(code, 16) >= 0
    assert fingerprint.code(fingerprint.METHOD_MODULES[:-1]) != code


def sweep(data_root, results):
    sets = [x for kv in TINY for x in ("--set", kv)]
    return CliRunner().invoke(cli, ["sweep", "-d", "APY", "-r", "plain", "--seeds", "1",
                                    "--profile", "smoke", *sets, "--data-root", str(data_root),
                                    "--results", str(results), "--name", "s"])


def test_a_sweep_after_a_code_change_retrains_and_keeps_the_old_run_aside(
        tmp_path, data_root, monkeypatch):
    first = sweep(data_root, tmp_path)
    assert first.exit_code == 0, first.output
    (run,) = store.run_dirs(tmp_path / "s")
    old = json.loads((run / store.RECORD).read_text())
    assert old["provenance"]["code"] == fingerprint.of_method("vsboost")
    assert "-> 0 to run" in sweep(data_root, tmp_path).output  # same code: reused

    monkeypatch.setattr(fingerprint, "code", lambda modules=None: "f" * 64)  # the edited code
    again = sweep(data_root, tmp_path)
    assert again.exit_code == 0, again.output
    assert "1 done by other code (to supersede)" in again.output
    assert "superseded 1 record(s) of other code" in again.output
    new = json.loads((run / store.RECORD).read_text())
    assert new["provenance"]["code"] == "f" * 64
    (kept,) = (tmp_path / "s" / store.SUPERSEDED_DIR).iterdir()
    assert kept.name == f"{run.name}-{old['provenance']['code'][:12]}"
    assert json.loads((kept / store.RECORD).read_text()) == old
    assert [r["provenance"]["code"] for r in store.load_records(tmp_path / "s")] == ["f" * 64]


def test_a_record_naming_no_code_counts_as_other_code(tmp_path, data_root):
    assert sweep(data_root, tmp_path).exit_code == 0
    (run,) = store.run_dirs(tmp_path / "s")
    record = json.loads((run / store.RECORD).read_text())
    del record["provenance"]["code"]
    (run / store.RECORD).write_text(json.dumps(record))
    assert store.status_of(run, fingerprint.of_method("vsboost")) == store.OTHER_CODE
    assert store.status_of(run) == "done"


def test_a_record_whose_code_is_not_a_sha256_is_refused_naming_the_field(tmp_path, data_root):
    assert sweep(data_root, tmp_path).exit_code == 0
    (run,) = store.run_dirs(tmp_path / "s")
    record = json.loads((run / store.RECORD).read_text())
    record["provenance"]["code"] = "not-a-hash"
    (run / store.RECORD).write_text(json.dumps(record))
    with pytest.raises(store.RecordError, match="provenance.code"):
        store.load_records(tmp_path / "s")
