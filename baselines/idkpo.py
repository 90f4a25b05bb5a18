"""IdkPO: preference optimisation towards "I don't know" on the forget questions.

DPO (Rafailov et al. 2023) with the refusal as the preferred answer ``y_w`` and the true
forget answer as the rejected one ``y_l``, plus a retain term; TOFU's ``idk`` variant
(Maini et al. 2024 §5) turned into a preference loss as the NPO paper's "DPO" baseline:
``L = -(2/β) E[log σ(β((log π_θ(y_w) - log π_ref(y_w)) - (log π_θ(y_l) - log π_ref(y_l))))]
+ α·NLL(retain)``. Refusals come from the task's IDK list (TOFU's ``idontknow.jsonl``).

Published defaults (NPO paper's TOFU runs): β = 0.1, lr 1e-5, 10 epochs, batch 32,
retain weight 1: the Config defaults. World tasks carry their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, retain_nll, seq_logprob
from unlearnbench.unlearning import register_method


@dataclass
class IdkPOConfig(LoopConfig):
    epochs: int = 10          # paper: 10
    beta: float = 0.1         # paper: 0.1
    alpha: float = 1.0        # retain NLL weight


class IdkPO(LLMMethod):
    name = "idkpo"
    needs_ref = True
    Config = IdkPOConfig

    def loss(self, ctx, batch):
        import torch

        from unlearnbench.baselines.llm_losses import dpo_loss

        win, lose = batch["idk"], batch["forget"]
        lw, _ = seq_logprob(ctx.model, win)
        ll, _ = seq_logprob(ctx.model, lose)
        with torch.no_grad():
            rw, _ = seq_logprob(ctx.ref_model, win)
            rl, _ = seq_logprob(ctx.ref_model, lose)
        forget = dpo_loss(lw, rw, ll, rl, ctx.config.beta)
        retain = retain_nll(ctx, batch)
        return forget + ctx.config.alpha * retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("idkpo", "llm", "unlearnbench.baselines.idkpo:IdkPO",
                description="DPO towards 'I don't know' on forget questions + retain NLL",
                paper="Rafailov et al. 2023; TOFU (Maini et al. 2024); Zhang et al. 2024")
