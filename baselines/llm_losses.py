"""The published LLM unlearning losses as pure functions of tensors (no model, no loop).

Every function takes logits / log-probabilities / hidden states already computed, so each
one is unit-tested against numbers worked out by hand. Conventions: ``labels`` use -100 on
positions that are not scored (prompt and padding); logits at position ``t`` predict token
``t + 1`` (causal shift applied here, as Hugging Face models do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence ``(sum of log p(answer tokens), number of answer tokens)``, shapes ``(B,)``."""
    logits = logits[:, :-1].float()
    tgt = labels[:, 1:]
    mask = tgt != -100
    lp = torch.log_softmax(logits, dim=-1).gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (lp * mask).sum(-1), mask.sum(-1)


def nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean negative log-likelihood over answer tokens (Hugging Face's causal LM loss)."""
    lp, n = sequence_logprob(logits, labels)
    return -lp.sum() / n.sum().clamp(min=1)


def ga_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent (Jang et al. 2023; TOFU's ``grad_ascent``): minimise ``-NLL(forget)``."""
    return -nll(logits, labels)


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO (Zhang et al. 2024, eq. 3): ``(2/β) E[log(1 + (π_θ(y|x)/π_ref(y|x))^β)]``.

    ``logp``/``ref_logp`` are sequence log-likelihoods (sums over answer tokens), shape ``(B,)``.
    Written as ``-(2/β) log σ(-β (log π_θ - log π_ref))``, the numerically stable form used
    by the authors' code (licong-lin/negative-preference-optimization).
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * (logp - ref_logp)).mean()


def simnpo_loss(logp: torch.Tensor, n_tokens: torch.Tensor, beta: float, gamma: float = 0.0) -> torch.Tensor:
    """SimNPO (Fan et al. 2024, eq. 5): ``-(2/β) log σ(-(β/|y|) log π_θ(y|x) - γ)``.

    Reference-free and length-normalised: ``logp`` is the sequence log-likelihood and
    ``n_tokens`` = |y|. γ is the reward margin (0 in the paper's TOFU runs).
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * logp / n_tokens.clamp(min=1) - gamma).mean()


def dpo_loss(logp_win: torch.Tensor, ref_win: torch.Tensor, logp_lose: torch.Tensor, ref_lose: torch.Tensor,
             beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023) scaled by 2/β as in the NPO paper's IdkDPO baseline:
    ``-(2/β) log σ(β[(log π_θ(y_w) - log π_ref(y_w)) - (log π_θ(y_l) - log π_ref(y_l))])``."""
    return -(2.0 / beta) * F.logsigmoid(beta * ((logp_win - ref_win) - (logp_lose - ref_lose))).mean()


def kl_on_answers(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over answer tokens of ``KL(π_ref(·|prefix) ‖ π_θ(·|prefix))`` (TOFU's KL retain term)."""
    mask = labels[:, 1:] != -100
    lp = torch.log_softmax(logits[:, :-1].float(), -1)[mask]
    lq = torch.log_softmax(ref_logits[:, :-1].float(), -1)[mask]
    return (lq.exp() * (lq - lp)).sum(-1).mean()


def rmu_control_vector(hidden_size: int, steering_coeff: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """RMU's control vector ``c·u/‖u‖`` with ``u ~ U[0,1)^d`` (Li et al. 2024, WMDP ``rmu/unlearn.py``)."""
    u = torch.rand(hidden_size, generator=generator)
    return u / u.norm() * steering_coeff


def masked_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden units of the positions where ``mask`` is 1."""
    m = mask.to(h.dtype).unsqueeze(-1)
    return (((h.float() - target.float()) ** 2) * m).sum() / (m.sum() * h.shape[-1]).clamp(min=1)


def rmu_loss(h_forget: torch.Tensor, control: torch.Tensor, mask_forget: torch.Tensor, h_retain: torch.Tensor,
             h_retain_frozen: torch.Tensor, mask_retain: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RMU (Li et al. 2024, eq. 1-2): ``‖h_θ(x_f) - c·u‖² + α ‖h_θ(x_r) - h_frozen(x_r)‖²`` at one layer.

    Returns ``(forget term, α × retain term)``; means are over real (unpadded) tokens.
    """
    forget = masked_mse(h_forget, control.expand_as(h_forget), mask_forget)
    retain = masked_mse(h_retain, h_retain_frozen, mask_retain)
    return forget, alpha * retain
