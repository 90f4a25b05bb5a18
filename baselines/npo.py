"""Negative Preference Optimization (NPO) with a retain term (NPO+RT).

Zhang, Lin, Bai, Mei (2024), "Negative Preference Optimization: From Catastrophic Collapse
to Effective Unlearning", eq. 3:
``L_NPO = (2/β) E_forget[log(1 + (π_θ(y|x)/π_ref(y|x))^β)]``, with ``π_ref`` the model before
unlearning (frozen copy) and sequence likelihoods over the answer tokens; NPO+RT adds
``α·NLL(retain)``. As β → 0 it recovers gradient ascent; the log makes the per-example
weight ``σ(β log π_θ/π_ref)`` vanish once an example is forgotten, which is why NPO
degrades utility more slowly than GA.

Published defaults (TOFU runs of licong-lin/negative-preference-optimization): β = 0.1,
lr 1e-5, 10 epochs, effective batch 32, retain weight 1: the Config defaults. World tasks
carry their own (``settings["method_defaults"]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, retain_nll, seq_logprob
from unlearnbench.unlearning import register_method


@dataclass
class NPOConfig(LoopConfig):
    epochs: int = 10          # paper: 10
    beta: float = 0.1         # paper: 0.1
    alpha: float = 1.0        # retain NLL weight (NPO+RT: 1); 0 gives plain NPO


class NPO(LLMMethod):
    name = "npo"
    needs_ref = True
    Config = NPOConfig

    def loss(self, ctx, batch):
        import torch

        from unlearnbench.baselines.llm_losses import npo_loss

        f = batch["forget"]
        logp, _ = seq_logprob(ctx.model, f)
        with torch.no_grad():
            ref_logp, _ = seq_logprob(ctx.ref_model, f)
        forget = npo_loss(logp, ref_logp, ctx.config.beta)
        if ctx.config.alpha == 0:
            return forget, {"forget": forget.detach()}
        retain = retain_nll(ctx, batch)
        return forget + ctx.config.alpha * retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("npo", "llm", "unlearnbench.baselines.npo:NPO",
                description="negative preference optimization + retain NLL", paper="Zhang et al. 2024 (arXiv:2404.05868)")
