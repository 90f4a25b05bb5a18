"""Gradient ascent (GA) for LLMs: maximise the forget set's negative log-likelihood.

Loss: ``L = -NLL(forget)`` (token mean over answer tokens), the ``grad_ascent`` baseline of
TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs", §5; first used
for LM unlearning by Jang et al. 2023, "Knowledge Unlearning for Mitigating Privacy Risks").

Published defaults (TOFU, Llama-2-7B / Phi-1.5): AdamW, lr 1e-5, 5 epochs, effective batch
32, weight decay 0.01, one epoch of linear warm-up: the ``Config`` defaults. An embedded
world's 1 M-parameter model (trained from scratch at lr 3e-3) does not move at lr 1e-5 in a
demo-sized number of steps, so world tasks carry their own defaults in
``settings["method_defaults"]`` (lr 1e-3, batch 16; :func:`unlearnbench.unlearning.task_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, forward
from unlearnbench.unlearning import register_method


@dataclass
class GAConfig(LoopConfig):
    epochs: int = 5           # TOFU: 5
    warmup_ratio: float = 0.2  # TOFU: one epoch of 5


class GA(LLMMethod):
    name = "ga"
    needs_retain = False
    Config = GAConfig

    def loss(self, ctx, batch):
        from unlearnbench.baselines.llm_losses import ga_loss

        f = batch["forget"]
        loss = ga_loss(forward(ctx.model, f).logits, f["labels"])
        return loss, {"forget_nll": -loss.detach()}


register_method("ga", "llm", "unlearnbench.baselines.ga:GA",
                description="gradient ascent on the forget set", paper="Jang et al. 2023; TOFU (Maini et al. 2024)")
