"""The five networks of VS-Boost (paper §3, Fig. 2), each "stacked" over M independent members.

Every layer holds M independent weight sets and maps ``[M, B, d_in] -> [M, B, d_out]`` with one
batched matmul. M = 1 is an ordinary single training; M > 1 trains several seeds in one pass with
larger kernels, and because members share no parameter and Adam is elementwise, member m follows
exactly the trajectory of its solo run (up to the float order inside the matmul kernels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vsboost.config import COMMON

# The defaults of the settings `leak` and `init_std` (vsboost/config.py holds them and their
# sources); the trainer passes its config's values.
LEAK = COMMON["leak"][0]
INIT_STD = COMMON["init_std"][0]


class StackedLinear(nn.Module):
    def __init__(self, members: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(members, 1, d_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def reset(self, generators: list[torch.Generator], std: float = INIT_STD) -> None:
        """Draw member m's weights from generator m only, so a member's init ignores the others."""
        with torch.no_grad():
            for m, gen in enumerate(generators):
                self.weight[m].normal_(0.0, std, generator=gen)
            self.bias.zero_()


class JointLinear(StackedLinear):
    """A StackedLinear over the concatenation [x; a], stored as two blocks: ``weight`` acts on x,
    ``weight_att`` on a. Neither the concatenation nor a slice of the weight is ever built, so
    the x block's gradient lands in place: slicing a parameter costs a zero-filled gradient of
    the whole weight on every backward (the critic's is 50 MB). Initialised exactly as one
    StackedLinear over [x; a]: member m draws the whole matrix, then it is split."""

    def __init__(self, members: int, d_x: int, d_att: int, d_out: int):
        super().__init__(members, d_x, d_out)
        # Zeros, not empty: reset() draws it, and code that sets only .weight stays finite.
        self.weight_att = nn.Parameter(torch.zeros(members, d_att, d_out))

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        return torch.baddbmm(torch.baddbmm(self.bias, x, self.weight), a, self.weight_att)

    def reset(self, generators: list[torch.Generator], std: float = INIT_STD) -> None:
        d_x = self.weight.shape[1]
        with torch.no_grad():
            for m, gen in enumerate(generators):
                full = torch.empty(d_x + self.weight_att.shape[1], self.weight.shape[2],
                                   device=self.weight.device)
                full.normal_(0.0, std, generator=gen)
                self.weight[m], self.weight_att[m] = full[:d_x], full[d_x:]
            self.bias.zero_()


class Generator(nn.Module):
    """G(z, a) -> x~: [z; a] -> hidden -> LeakyReLU -> 2048 -> ReLU (pooled CNN features >= 0)."""

    def __init__(self, members: int, noise_dim: int, att_dim: int, hidden: int, feat_dim: int,
                 leak: float = LEAK):
        super().__init__()
        self.leak = leak
        self.fc1 = StackedLinear(members, noise_dim + att_dim, hidden)
        self.fc2 = StackedLinear(members, hidden, feat_dim)

    def forward(self, z: Tensor, a: Tensor) -> Tensor:
        h = nn.functional.leaky_relu(self.fc1(torch.cat([z, a], dim=-1)), self.leak)
        return torch.relu(self.fc2(h))


class Critic(nn.Module):
    """D(x, a) -> score; no sigmoid (WGAN)."""

    def __init__(self, members: int, feat_dim: int, att_dim: int, hidden: int,
                 leak: float = LEAK):
        super().__init__()
        self.leak = leak
        self.fc1 = JointLinear(members, feat_dim, att_dim, hidden)
        self.fc2 = StackedLinear(members, hidden, 1)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        h = nn.functional.leaky_relu(self.fc1(x, a), self.leak)
        return self.fc2(h).squeeze(-1)

    def input_gradient(self, x: Tensor, a: Tensor) -> Tensor:
        """∇ₓ D(x, a), ``[M, B, feat]``, in closed form and differentiable w.r.t. D's weights.

        D has one hidden layer, so ∇ₓD = W₁ₓ (w₂ ∘ σ'(W₁[x; a] + b₁)) where σ' ∈ {1, leak} is
        piecewise constant: its own derivative is zero almost everywhere. This is what autograd's
        double backward returns, at about half the work: that path also runs an all-zero
        second-order pass through the pre-activation, a full matmul at the critic's widest layer.
        """
        with torch.no_grad():  # only the sign of the pre-activation is used
            pre = self.fc1(x, a)
        slope = torch.where(pre > 0, 1.0, self.leak)  # == leaky_relu_backward's choice at pre == 0
        grad_hidden = slope * self.fc2.weight.transpose(1, 2)  # [M, B, H] * [M, 1, H]
        # Computed transposed, W₁ₓ @ grad_hiddenᵀ, so that W₁ₓ's gradient comes out in W₁ₓ's own
        # layout and accumulates without a transposing copy.
        return torch.bmm(self.fc1.weight, grad_hidden.transpose(1, 2)).transpose(1, 2)


class Encoder(nn.Module):
    """E(x) -> h: one linear layer + LeakyReLU (paper §4); refines real and synthetic features."""

    def __init__(self, members: int, feat_dim: int, enc_dim: int, leak: float = LEAK):
        super().__init__()
        self.leak = leak
        self.fc = StackedLinear(members, feat_dim, enc_dim)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.leaky_relu(self.fc(x), self.leak)


class Regressor(nn.Module):
    """R(h) -> a~: maps refined features into the semantic space for SML (paper eq. 3)."""

    def __init__(self, members: int, enc_dim: int, hidden: int, att_dim: int,
                 leak: float = LEAK):
        super().__init__()
        self.leak = leak
        self.fc1 = StackedLinear(members, enc_dim, hidden)
        self.fc2 = StackedLinear(members, hidden, att_dim)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc2(nn.functional.leaky_relu(self.fc1(h), self.leak))


class Relation(nn.Module):
    """F(h_i, h_j) before the sigmoid: w^T (h_i ∘ h_j) + b (paper eq. 4).

    Returns logits; the sigmoid is folded into the BCE for numerical stability.
    """

    def __init__(self, members: int, enc_dim: int):
        super().__init__()
        self.fc = StackedLinear(members, enc_dim, 1)

    def forward(self, h_i: Tensor, h_j: Tensor) -> Tensor:
        return self.fc(h_i * h_j).squeeze(-1)


def reset_all(modules: list[nn.Module], generators: list[torch.Generator],
              std: float = INIT_STD) -> None:
    """Initialise every stacked layer, in module order, from the per-member generators."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, StackedLinear):
                layer.reset(generators, std)


def adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam with the fused kernel, for every stacked module here and the final classifiers.

    One pass over each parameter, its gradient and both moments per step instead of about ten
    elementwise passes: the optimiser steps are memory-bound (the critic step alone updates ~30M
    floats), so this matters on CPU as much as on GPU. Same update rule, same numbers up to float
    rounding. torch < 2.4 has no fused CPU kernel: the multi-tensor one there. Decided from the
    version, not by catching the constructor's error: a broad ``except`` there would also swallow
    an exception a signal handler raises mid-call (a cluster job's time limit).
    """
    params = list(params)
    if _FUSED_CPU or all(p.is_cuda for p in params):
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


# lineage: torch 2.4 release notes (fused Adam on CPU)
_FUSED_CPU = torch.torch_version.TorchVersion(torch.__version__) >= "2.4"
