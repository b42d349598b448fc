"""The three losses of VS-Boost (paper eq. 1-8) as pure functions.

Every function takes stacked tensors ``[M, B, ...]`` and returns one loss per member, shape
``[M]``: the trainer sums over members, which keeps members' gradients independent.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.nn import functional as F

from vsboost.models import Critic


def critic_loss(d_real: Tensor, d_fake: Tensor, penalty: Tensor, gp_weight: float) -> Tensor:
    """Negated WGAN-GP objective of eq. 1, minimised by the critic: -(E[D(x)] - E[D(x~)]) + γ·GP."""
    return d_fake.mean(dim=1) - d_real.mean(dim=1) + gp_weight * penalty


def gradient_penalty(
    critic: Critic, real: Tensor, fake: Tensor, att: Tensor, alpha: Tensor
) -> Tensor:
    """E[(||∇_x̂ D(x̂, a)||₂ − 1)²] with x̂ = αx + (1−α)x~ (eq. 1; Gulrajani et al. 2017).

    ``alpha`` is ``[M, B, 1]``, one U(0, 1) draw per sample. The input gradient comes in closed
    form (:meth:`Critic.input_gradient`), still differentiable w.r.t. the critic's weights, so the
    penalty costs no double backward.
    """
    mixed = alpha * real + (1 - alpha) * fake
    grad = critic.input_gradient(mixed, att)
    return ((grad.norm(dim=-1) - 1) ** 2).mean(dim=1)


def semantic_metric_loss(
    pred_att: Tensor, class_att: Tensor, target: Tensor, tau: float, cosine: bool = False
) -> Tensor:
    """InfoNCE of eq. 3: ã = R(E(x)) against every candidate class embedding, own class positive.

    ``class_att`` is ``[N, A]`` (all S+U classes by default), ``target`` ``[M, B]`` indexes into it.
    With ``cosine`` the logits use the normalised ã (a flag; the paper writes the raw dot product).
    """
    if cosine:
        pred_att = F.normalize(pred_att, dim=-1)
    logits = pred_att @ class_att.T / tau  # [M, B, N]
    per_sample = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [M, B]
    return per_sample.mean(dim=1)


def relation_bce(logit: Tensor, target: Tensor) -> Tensor:
    """L_bce(ξ; ζ) of eq. 5, ξ = σ(logit), ζ = target ∈ [0, 1]; zero gradient at ξ = ζ (eq. 6)."""
    return F.binary_cross_entropy_with_logits(logit, target, reduction="none")


def relational_metric_loss(
    relation: Callable[[Tensor, Tensor], Tensor], h: Tensor, h_pos: Tensor, h_neg: Tensor,
    target_pos: Tensor, target_neg: Tensor,
) -> Tensor:
    """Eq. 7: E_h[L_bce(h, h⁺) + L_bce(h, h⁻)], targets = cos of the class embeddings, clipped."""
    pos = relation_bce(relation(h, h_pos), target_pos.clamp(0, 1))
    neg = relation_bce(relation(h, h_neg), target_neg.clamp(0, 1))
    return (pos + neg).mean(dim=1)
