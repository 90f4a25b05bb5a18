"""Gradient difference (GradDiff) for LLMs: ascend on the forget set, descend on the retain set.

Loss: ``L = -γ·NLL(forget) + α·R(retain)``, with ``R`` the retain NLL (TOFU's
``grad_diff``) or ``KL(π_ref ‖ π_θ)`` on retain answers (TOFU's ``KL`` baseline); Liu et al.
2022 ("Continual learning and private unlearning"), Maini et al. 2024 (TOFU §5).
Published defaults (TOFU): lr 1e-5, 5 epochs, batch 32, γ = α = 1, retain loss NLL.
World tasks carry their own defaults (see :mod:`unlearnbench.baselines.ga`).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, forward, retain_kl, retain_nll
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method


@dataclass
class GradDiffConfig(LoopConfig):
    epochs: int = 5           # TOFU: 5
    warmup_ratio: float = 0.2  # TOFU: one epoch of 5
    gamma: float = 1.0        # forget-term weight (TOFU: 1)
    alpha: float = 1.0        # retain-term weight (TOFU: 1)
    retain_loss: str = "nll"  # "nll" (TOFU grad_diff) or "kl" (TOFU KL)


class GradDiff(LLMMethod):
    name = "graddiff"
    Config = GradDiffConfig

    def unlearn(self, model, task, config, *, data, progress=True):
        if config.retain_loss not in ("nll", "kl"):
            raise UserError(f"graddiff retain_loss must be 'nll' or 'kl', not {config.retain_loss!r}")
        self.needs_ref = config.retain_loss == "kl"
        return super().unlearn(model, task, config, data=data, progress=progress)

    def loss(self, ctx, batch):
        from unlearnbench.baselines.llm_losses import ga_loss

        f = batch["forget"]
        forget = ga_loss(forward(ctx.model, f).logits, f["labels"])
        retain = retain_kl(ctx, batch) if ctx.config.retain_loss == "kl" else retain_nll(ctx, batch)
        return ctx.config.gamma * forget + ctx.config.alpha * retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("graddiff", "llm", "unlearnbench.baselines.graddiff:GradDiff",
                description="gradient ascent on forget + descent (NLL or KL) on retain",
                paper="Liu et al. 2022; TOFU (Maini et al. 2024)")
