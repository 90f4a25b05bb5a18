"""SophiaG: the clipped diagonal second-order optimizer that SOUL uses for LLM unlearning.

Liu, Li, Hall, Liang, Ma (2023), "Sophia: A Scalable Stochastic Second-order Optimizer for
Language Model Pre-training" (Algorithm 3; reference code Liuhong99/Sophia ``sophia.py``),
as adopted by Jia et al. (2024), "SOUL: Unlocking the Power of Second-Order Optimization for
LLM Unlearning", EMNLP 2024 (OPTML-Group/SOUL, ``src/optim``: ``SophiaG`` with
``betas=(0.9, 0.95)``, ``rho=0.04``, ``weight_decay=0.1`` in its TOFU configs).

Per parameter, at step ``t`` with gradient ``g_t`` and learning rate ``η_t``::

    m_t = β1 m_{t-1} + (1 - β1) g_t                          (no bias correction)
    h_t = β2 h_{t-k} + (1 - β2) ĥ_t    if an estimate ĥ_t was given at this step, else h_{t-1}
    θ  ← θ (1 - η_t λ)                                       (decoupled weight decay)
    θ  ← θ - η_t · sign(m_t) · min(|m_t| / max(ρ h_t, ε), 1)

``ĥ`` is a diagonal Hessian estimate: Gauss-Newton-Bartlett ``B · ĝ ⊙ ĝ`` (ĝ the gradient of
the loss on labels sampled from the model itself, B the number of sampled tokens) or
Hutchinson ``u ⊙ (H u)``; see :mod:`unlearnbench.baselines.soul`. The reference code folds B
into the step (``rho * bs * hess``); here ``update_hessian`` takes ``ĥ`` with B already
applied, which is the same number. ε = 1e-15 as in the reference code.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class SophiaG(Optimizer):
    """Sophia with a clipped Newton-like step; call :meth:`update_hessian` every ``k`` steps."""

    def __init__(self, params, lr: float = 1e-5, betas: tuple[float, float] = (0.9, 0.95), rho: float = 0.04,
                 weight_decay: float = 0.1, eps: float = 1e-15):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas {betas}")
        if rho < 0 or weight_decay < 0:
            raise ValueError("rho and weight_decay must be >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), rho=rho, weight_decay=weight_decay, eps=eps))

    def _state(self, p):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def update_hessian(self, estimates: dict | None = None) -> None:
        """``h ← β2 h + (1 - β2) ĥ`` with ``ĥ = estimates[p]`` (default: ``p.grad`` holds ĥ)."""
        for group in self.param_groups:
            beta2 = group["betas"][1]
            for p in group["params"]:
                est = estimates.get(p) if estimates is not None else p.grad
                if est is None:
                    continue
                self._state(p)["hessian"].mul_(beta2).add_(est, alpha=1 - beta2)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1 = group["betas"][0]
            lr, rho, wd, eps = group["lr"], group["rho"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("SophiaG does not support sparse gradients")
                state = self._state(p)
                state["step"] += 1
                p.mul_(1 - lr * wd)
                m = state["exp_avg"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                ratio = (m.abs() / (rho * state["hessian"]).clamp(min=eps)).clamp(max=1.0)
                p.addcmul_(m.sign(), ratio, value=-lr)
        return loss
