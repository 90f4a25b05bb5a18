"""SimNPO: reference-free, length-normalised NPO, with a retain term.

Fan, Liu, Lin, Jia, Zhang, Mei, Liu (2024), "Simplicity Prevails: Rethinking Negative
Preference Optimization for LLM Unlearning", eq. 5:
``L = -(2/β) E_forget[log σ(-(β/|y|) log π_θ(y|x) - γ)] + λ·NLL(retain)``.
No reference model; the length normalisation removes NPO's bias towards short answers.

Published defaults (OPTML-Group/Unlearn-Simple, TOFU/README.md and config/forget.yaml,
Llama-2-7B-chat): forget10: β = 4.5, forget weight 0.125 (``npo_coeff``); forget05: β = 2.5,
weight 0.1375; γ = 0; retain NLL weight 1; lr 1e-5; 20 epochs; batch 32 (8 GPUs × 1 × 4).
The Config holds the forget10 values; world tasks carry their own (``settings["method_defaults"]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, retain_nll, seq_logprob
from unlearnbench.unlearning import register_method


@dataclass
class SimNPOConfig(LoopConfig):
    epochs: int = 20          # paper: 20
    beta: float = 4.5         # paper (TOFU forget10): 4.5
    gamma: float = 0.0        # reward margin; paper: 0
    forget_weight: float = 0.125  # paper: 0.125 (npo_coeff, forget10)
    alpha: float = 1.0        # retain NLL weight; paper: 1


class SimNPO(LLMMethod):
    name = "simnpo"
    Config = SimNPOConfig

    def loss(self, ctx, batch):
        from unlearnbench.baselines.llm_losses import simnpo_loss

        c = ctx.config
        logp, n = seq_logprob(ctx.model, batch["forget"])
        forget = simnpo_loss(logp, n, c.beta, c.gamma)
        if c.alpha == 0:
            return c.forget_weight * forget, {"forget": forget.detach()}
        retain = retain_nll(ctx, batch)
        return c.forget_weight * forget + c.alpha * retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("simnpo", "llm", "unlearnbench.baselines.simnpo:SimNPO",
                description="simple (reference-free, length-normalised) NPO + retain NLL",
                paper="Fan et al. 2024 (arXiv:2410.07163)")
