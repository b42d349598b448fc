"""Files from elsewhere (results folders, checkpoints, locks, archives, data) are checked, never
trusted: each crafted input of issue 13 ends in one line naming the file, or is refused."""

from __future__ import annotations

import pytest
import torch

from vsboost.config import make_config
from vsboost.data import load
from vsboost.train import CheckpointError, train

FAST = {"hidden": 32, "enc_dim": 32, "n_way": 8, "k_shot": 8, "steps_per_epoch": 3,
        "syn_num": 10, "cls_epochs": 2, "eval_every": 1, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def apy(data_root):
    return load(data_root, "APY")


class _Touch:
    """A pickle payload that creates a file when unpickled: harmless, but it proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ===== finding 1: checkpoints load with pickle disabled =====

def test_a_checkpoint_carrying_a_pickle_payload_does_not_run_it(apy, tmp_path):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    marker, ckpt = tmp_path / "fired", tmp_path / "run.pt"
    torch.save({"format": 2, "seeds": [0], "payload": _Touch(marker)}, ckpt)
    with pytest.raises(CheckpointError, match=r"run\.pt: .*pickle disabled.*fix: delete it"):
        train(apy, cfg, [0], checkpoint=ckpt)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"\x80\x02}q\x00."])
def test_a_corrupt_checkpoint_is_one_line_naming_the_file_and_the_fix(apy, tmp_path, content):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        train(apy, cfg, [0], checkpoint=ckpt)
    message = str(err.value)
    assert str(ckpt) in message and "fix: delete it" in message and "\n" not in message


def test_a_genuine_checkpoint_loads_with_pickle_disabled_and_resumes(apy, tmp_path):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    whole = train(apy, cfg, [0])[0]
    ckpt = tmp_path / "run.pt"

    def stop_after_one(epoch, total):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [0], checkpoint=ckpt, progress=stop_after_one)
    torch.load(ckpt, weights_only=True)  # what the trainer does: raises if it needed pickle
    assert train(apy, cfg, [0], checkpoint=ckpt)[0].metrics == whole.metrics
