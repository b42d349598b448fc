"""Each loss against its equation in the paper, on small hand-made tensors."""

import math

import torch
from torch.nn import functional as F

from vsboost.losses import (
    critic_loss,
    gradient_penalty,
    relation_bce,
    relational_metric_loss,
    semantic_metric_loss,
)
from vsboost.models import Critic, StackedLinear


def test_bce_gradient_vanishes_exactly_where_prediction_equals_cosine_target():
    # Paper eq. 6: dL/dξ = (ξ − ζ) / (ξ(1 − ξ)), zero iff ξ = ζ.
    zeta = torch.tensor([0.0, 0.3, 0.5, 0.9])
    for target_xi in (zeta, torch.tensor([0.2, 0.6, 0.1, 0.5])):
        xi = target_xi.clone().clamp(1e-4, 1 - 1e-4).requires_grad_(True)
        logit = torch.log(xi) - torch.log1p(-xi)
        relation_bce(logit, zeta).sum().backward()
        expected = (xi - zeta) / (xi * (1 - xi))
        torch.testing.assert_close(xi.grad, expected.detach(), rtol=1e-4, atol=1e-4)
    xi = torch.tensor([0.3, 0.5, 0.9], requires_grad=True)
    relation_bce(torch.log(xi) - torch.log1p(-xi), xi.detach()).sum().backward()
    assert xi.grad.abs().max() < 1e-5


def test_relation_bce_matches_equation_5():
    zeta, xi = torch.tensor([0.25, 0.8]), torch.tensor([0.6, 0.3])
    expected = -(zeta * torch.log(xi) + (1 - zeta) * torch.log(1 - xi))
    torch.testing.assert_close(relation_bce(torch.logit(xi), zeta), expected)


def test_semantic_metric_loss_is_cross_entropy_over_scaled_dot_products():
    torch.manual_seed(0)
    pred = torch.randn(2, 5, 4)  # [M, B, A]
    classes = F.normalize(torch.randn(7, 4), dim=1)
    target = torch.randint(0, 7, (2, 5))
    tau = 0.1
    got = semantic_metric_loss(pred, classes, target, tau)
    for m in range(2):
        logits = pred[m] @ classes.T / tau
        # eq. 3 written out: −log(exp(s⁺) / Σ exp(s))
        manual = -(logits.gather(1, target[m, :, None]).squeeze(1) - logits.logsumexp(1)).mean()
        torch.testing.assert_close(got[m], manual)


def test_semantic_metric_loss_cosine_flag_normalises_the_prediction():
    pred = torch.tensor([[[3.0, 4.0]]])
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    got = semantic_metric_loss(pred, classes, torch.tensor([[1]]), tau=1.0, cosine=True)
    expected = -math.log(math.exp(0.8) / (math.exp(0.6) + math.exp(0.8)))
    assert abs(float(got) - expected) < 1e-6


def test_gradient_penalty_equals_direct_computation():
    torch.manual_seed(1)
    critic = Critic(members=2, feat_dim=6, att_dim=3, hidden=8)
    for layer in critic.modules():
        if isinstance(layer, StackedLinear):
            torch.nn.init.normal_(layer.weight, std=0.5)
    real, fake = torch.rand(2, 4, 6), torch.rand(2, 4, 6)
    att, alpha = torch.rand(2, 4, 3), torch.rand(2, 4, 1)
    got = gradient_penalty(critic, real, fake, att, alpha)
    for m in range(2):
        norms = []
        for i in range(4):
            xi = (alpha[m, i] * real[m, i] + (1 - alpha[m, i]) * fake[m, i]).requires_grad_(True)
            full = torch.zeros(2, 1, 6)
            full[m, 0] = xi
            score = critic(full, att[:, i : i + 1])[m, 0]
            (g,) = torch.autograd.grad(score, xi)
            norms.append((g.norm() - 1) ** 2)
        torch.testing.assert_close(got[m], torch.stack(norms).mean())


def test_critic_loss_is_negated_wasserstein_estimate_plus_weighted_penalty():
    d_real = torch.tensor([[1.0, 3.0]])
    d_fake = torch.tensor([[0.5, 0.5]])
    got = critic_loss(d_real, d_fake, torch.tensor([0.2]), gp_weight=10.0)
    torch.testing.assert_close(got, torch.tensor([0.5 - 2.0 + 2.0]))


def test_relational_metric_loss_sums_positive_and_negative_bce_and_clips_targets():
    def relation(a, b):
        return (a * b).sum(-1)

    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    got = relational_metric_loss(
        relation, h, h, h.flip(1), torch.tensor([[1.0, 1.2]]), torch.tensor([[-0.5, 0.25]])
    )
    logit_pos, logit_neg = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    expected = (relation_bce(logit_pos, torch.tensor([1.0, 1.0]))
                + relation_bce(logit_neg, torch.tensor([0.0, 0.25]))).mean()
    torch.testing.assert_close(got[0], expected)


def test_members_get_independent_gradients():
    # Stacked members must not leak into each other: member 1's loss has no grad on member 0.
    layer = StackedLinear(2, 3, 1)
    torch.nn.init.normal_(layer.weight)
    out = layer(torch.rand(2, 4, 3)).squeeze(-1)
    out[1].sum().backward()
    assert layer.weight.grad[0].abs().sum() == 0
    assert layer.weight.grad[1].abs().sum() > 0
