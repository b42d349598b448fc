"""docs/methods.md, "Adding a method", followed step by step: a toy method defined and registered
here, in the test, runs a sweep through `bench` and appears in its report. No harness code
names it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import Tensor

from bench.cli import cli
from vsboost import evaluate, methods
from vsboost.config import COMMON, DATASETS, HPARAMS, SHARED, Hyperparameters, epoch_steps
from vsboost.methods.base import Method, synthesize
from vsboost.models import StackedLinear, adam, reset_all


class Projection(torch.nn.Module):
    """G(z, a) = aW + s·z: the class embedding projected into feature space, plus noise."""

    def __init__(self, members: int, att_dim: int, feat_dim: int, spread: float):
        super().__init__()
        self.fc1 = StackedLinear(members, att_dim, feat_dim)  # fc1: feature_sample reads it
        self.spread = spread

    def forward(self, z: Tensor, a: Tensor) -> Tensor:
        return self.fc1(a) + self.spread * z


# Step 1: the hyperparameter block (what the generic loop and the final classifiers read are
# shared with VS-Boost by reference; the method's own keys carry a source tag each).
TOY_HPARAMS = Hyperparameters(
    label="Toy projection", headline="toy", rows={"toy": {}},
    common={**{k: COMMON[k] for k in (*SHARED, "beta1", "beta2")},
            "gan_epochs": (2, "choice: a test"), "steps_per_epoch": (4, "choice: a test"),
            "batch_size": (32, "choice: a test"), "lr_gan": (0.05, "choice: a test"),
            "spread": (0.01, "choice: a test"), "syn_num": (20, "choice: a test")},
    per_dataset={ds: {} for ds in DATASETS}, batch_keys=("batch_size",))


# Step 2: the method class.
class Toy(Method):
    name = "toy"
    hparams = TOY_HPARAMS

    def __init__(self, data, cfg, seeds, dev):
        super().__init__(data, cfg, seeds, dev)
        self.noise_dim = self.data.feature_dim
        self.G = Projection(self.members, self.data.att_dim, self.noise_dim, cfg.spread).to(dev)
        reset_all([self.G], self.rng["init"], cfg.init_std)
        self.nets = {"G": self.G}
        self.opts = {"G": adam(self.G.parameters(), cfg.lr_gan, (cfg.beta1, cfg.beta2))}
        self.steps = epoch_steps(cfg, len(self.data.train_y))
        self.draws = self.steps

    def draw_epoch(self):
        n, shape = len(self.data.train_y), (self.steps, self.cfg.batch_size)
        idx = torch.stack([torch.randint(n, shape, generator=g, device=g.device)
                           for g in self.rng["episodes"]])
        return idx, torch.zeros((), dtype=torch.long)

    def iteration(self, batch):
        x, y = self.data.train_x[batch], self.data.train_y[batch]
        loss = ((self.G.fc1(self.data.att[y]) - x) ** 2).sum(-1).mean(1)  # per member
        self.opts["G"].zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opts["G"].step()
        return {"loss_fit": loss.detach()}

    def eval_features(self):
        data = self.data
        with torch.no_grad():
            syn, syn_y = synthesize(self.G, data.att, data.unseen, self.cfg.syn_num,
                                    self.rng["eval"], self.noise_dim)

        def every(x):
            return x.expand(self.members, -1, -1)

        return evaluate.EvalFeatures(train=every(data.train_x), syn=syn, syn_y=syn_y,
                                     seen=every(data.test_seen_x),
                                     unseen=every(data.test_unseen_x))


@pytest.fixture
def toy():
    # Step 3: register it (here in the test; a built-in is registered in vsboost/methods).
    methods.register(Toy)
    yield Toy
    del methods.METHODS["toy"], HPARAMS["toy"]


def bench(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_method_registered_in_a_test_sweeps_through_bench_and_appears_in_the_report(
        toy, tmp_path, data_root):
    # Step 4: sweep and report, as for VS-Boost.
    common = ["--results", tmp_path / "results", "--name", "toy"]
    swept = bench("sweep", "--method", "toy", "-d", "APY", "--seeds", "2", "--synthetic",
                  "--data-root", data_root, "--profile", "smoke", *common)
    assert swept.exit_code == 0, swept.output
    assert "now: 2 runs: 2 done" in swept.output
    reported = bench("report", *common, "--out", tmp_path / "report")
    assert reported.exit_code == 0, reported.output
    table2 = (tmp_path / "report" / "table2.md").read_text()
    line = next(row for row in table2.splitlines() if "Toy projection" in row)
    assert line.count("(2)") == 3  # U, S and H averaged over its 2 seeds
    assert "loss_fit" not in table2 and "spread" in table2  # its settings, with their source


def test_a_method_with_a_taken_name_or_row_is_refused(toy):
    from vsboost.config import ConfigError

    with pytest.raises(ConfigError, match="toy"):
        methods.register(Toy)
