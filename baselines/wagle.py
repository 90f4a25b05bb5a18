"""WAGLE: weight-attribution-guided LLM unlearning (Jia, Liu, Zhang, Ram, Baracaldo, Liu 2024,
"WAGLE: Strategic Weight Attribution for Effective and Modular Unlearning in Large Language
Models", NeurIPS 2024, arXiv:2410.17509; code OPTML-Group/WAGLE).

WAGLE first scores every weight by its influence on unlearning, then runs an existing
unlearning method (GradDiff or NPO in the paper) updating only the top-scored weights.
The score (the paper's closed-form attribution; ``snip_advanced`` in the code's
``src/unlearn/generate_mask.py``) is, element-wise,

    S(θ) = | (θ - (1/γ) ∇ℓ_r(θ)) ⊙ ∇ℓ_f(θ) |

with ``∇ℓ_f`` / ``∇ℓ_r`` the forget / retain loss gradients (summed over mini-batches of the
training data, as the code accumulates them) and γ the Hessian-diagonal constant of the
implicit-gradient derivation (``mu = 1e-6`` in the released TOFU configs). Weights are ranked
over the whole model; the top ``mask_ratio`` share is updated (``mask/tofu_0.95.pt`` in the
released TOFU configs; the README's example ``tofu_0.8.pt`` = 80 % selected).

Frozen means bit-identical: the code multiplies gradients by the mask, but its AdamW weight
decay still shrinks the masked weights. Here the gradient of every masked element is zeroed
by a tensor hook (so Adam's moments and the clipping norm see WAGLE's masked gradient) *and*
the masked elements are restored after every optimizer step, so weight decay cannot move
them. The wrapped method runs unchanged through the shared loop (``--set loss=npo``;
``--set loss_config='{"beta": 0.1}'`` overrides its own config fields; loop fields left at
``None`` take the wrapped method's defaults).
"""

from __future__ import annotations

import dataclasses
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from unlearnbench.baselines.llm_loop import LLMMethod
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method

# Loop fields a wrapper may override; None = the wrapped method's default.
LOOP_FIELDS = ("epochs", "max_steps", "lr", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
               "max_grad_norm", "seed")
_WRAPPERS = ("wagle", "soul")


def resolve_wrapped(config) -> tuple[Any, Any]:
    """The wrapped method instance and its Config (loop overrides + ``loss_config`` applied).

    Fills the wrapper's ``None`` loop fields with the resolved values, so the recorded config
    is complete.
    """
    from unlearnbench.unlearning import get_method

    if config.loss in _WRAPPERS:
        raise UserError(f"loss={config.loss!r} names a wrapper; name the loss it wraps (e.g. graddiff, npo)")
    inner = get_method(config.loss, "llm")
    if not hasattr(inner, "loss"):
        raise UserError(f"method {config.loss!r} has no loss to wrap")
    names = {f.name for f in dataclasses.fields(inner.Config)}
    values = {k: getattr(config, k) for k in LOOP_FIELDS if getattr(config, k) is not None and k in names}
    for k, v in dict(config.loss_config or {}).items():
        if k not in names:
            raise UserError(f"loss_config: method {config.loss} has no config field {k!r}")
        values[k] = v
    if "lora_r" in values and values["lora_r"]:
        raise UserError("wrappers train all weights; LoRA is not supported")
    inner_cfg = inner.Config(**values)
    for k in LOOP_FIELDS:
        if getattr(config, k) is None and hasattr(inner_cfg, k):
            setattr(config, k, getattr(inner_cfg, k))
    return inner, inner_cfg


# -- attribution -------------------------------------------------------------------------
def summed_gradients(lm, rows: list[dict], batch_size: int) -> dict:
    """Σ over mini-batches of ∇(token-mean NLL) for ``rows`` (question/answer); name -> tensor."""
    import torch

    from unlearnbench.baselines.llm_losses import nll
    from unlearnbench.tasks.mini_tofu_models import pad_batch

    model = lm.model
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()  # deterministic (no dropout), as the code's mask pass
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, labels = lm.encode_qa([lm.render(r["question"]) for r in chunk], [r["answer"] for r in chunk])
        b = pad_batch(ids, labels, lm.tokenizer.pad_token_id, device=lm.device)
        model.zero_grad(set_to_none=True)
        loss = nll(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"])
        loss.backward()
        with torch.no_grad():
            for n, p in params.items():
                if p.grad is not None:
                    total[n] += p.grad
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return total


def wagle_scores(params: dict, grad_forget: dict, grad_retain: dict, gamma: float) -> dict:
    """``|(θ - ∇ℓ_r/γ) ⊙ ∇ℓ_f|`` per parameter (name -> tensor)."""
    if gamma <= 0:
        raise UserError(f"gamma must be > 0, got {gamma}")
    return {n: ((p.detach() - grad_retain[n] / gamma) * grad_forget[n]).abs() for n, p in params.items()}


def top_mask(scores: dict, ratio: float) -> dict:
    """True on the top ``ratio`` share of all scores (global ranking, ties by position)."""
    import torch

    if not 0 < ratio <= 1:
        raise UserError(f"mask_ratio must be in (0, 1], got {ratio}")
    names = list(scores)
    flat = torch.cat([scores[n].flatten().float().cpu() for n in names])
    k = int(len(flat) * ratio)
    order = torch.argsort(-flat, stable=True)
    keep = torch.zeros(len(flat), dtype=torch.bool)
    keep[order[:k]] = True
    out, start = {}, 0
    for n in names:
        m = scores[n].numel()
        out[n] = keep[start:start + m].view_as(scores[n]).to(scores[n].device)
        start += m
    return out


@contextmanager
def frozen_outside(model, mask: dict):
    """Zero the gradients of masked-out elements and restore them after every optimizer step.

    ``mask``: parameter name -> bool tensor (True = may change). Works with any
    ``torch.optim.Optimizer`` (weight decay, momentum) because the restore runs after its step.
    """
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    params = dict(model.named_parameters())
    handles, frozen = [], []
    for n, m in mask.items():
        p = params[n]
        if bool(m.all()):
            continue
        handles.append(p.register_hook(lambda g, m=m: g * m.to(g.dtype)))
        off = ~m
        frozen.append((p, off, p.detach()[off].clone()))
    ids = {id(p) for p, _, _ in frozen}

    def restore(opt, args, kwargs):
        if not any(id(q) in ids for g in opt.param_groups for q in g["params"]):
            return
        with torch.no_grad():
            for p, off, vals in frozen:
                p[off] = vals

    handles.append(register_optimizer_step_post_hook(restore))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class WagleConfig:
    loss: str = "npo"            # wrapped method (paper: graddiff, npo); any loss-based LLM method works
    mask_ratio: float = 0.95     # share of weights updated (released TOFU configs: mask tofu_0.95.pt)
    gamma: float = 1e-6          # γ in S = |(θ - ∇ℓ_r/γ) ⊙ ∇ℓ_f| (code: mu = 1e-6, TOFU configs)
    attribution_batch_size: int = 8  # mini-batch size of the gradient sums (the code uses the training loader)
    loss_config: dict = field(default_factory=dict)  # overrides of the wrapped method's own Config fields
    epochs: int | None = None        # None: the wrapped method's default (same for the fields below)
    max_steps: int | None = None
    lr: float | None = None          # paper (Llama2-7B TOFU): 7e-6 GradDiff, 1e-5 NPO
    batch_size: int | None = None
    grad_accum: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None  # paper: 0.1
    max_grad_norm: float | None = None
    seed: int | None = None


class Wagle(LLMMethod):
    name = "wagle"
    Config = WagleConfig

    def unlearn(self, model, task, config, *, data: dict, progress: bool = True):
        inner, inner_cfg = resolve_wrapped(config)
        forget = data.get("forget") or []
        retain = data.get("retain") or []
        if not forget or not retain:
            raise UserError("WAGLE needs a forget and a retain set (its score uses both gradients)")
        seed = 0 if inner_cfg.seed is None else int(inner_cfg.seed)
        order = list(range(len(retain)))
        random.Random(seed).shuffle(order)
        retain_rows = [retain[order[i % len(order)]] for i in range(len(forget))]  # one retain row per forget row
        bs = max(1, int(config.attribution_batch_size))
        g_f = summed_gradients(model, forget, bs)
        g_r = summed_gradients(model, retain_rows, bs)
        params = dict(model.model.named_parameters())
        mask = top_mask(wagle_scores(params, g_f, g_r, config.gamma), config.mask_ratio)
        del g_f, g_r
        with frozen_outside(model.model, mask):
            out = inner.unlearn(model, task, inner_cfg, data=data, progress=progress)
        out.name = f"{model.name}+wagle({config.loss})"
        out.wagle_mask = mask
        return out


register_method("wagle", "llm", "unlearnbench.baselines.wagle:Wagle",
                description="weight-attribution mask (top weights by |(θ-∇ℓr/γ)⊙∇ℓf|) on top of graddiff/npo",
                paper="Jia et al. 2024, WAGLE (NeurIPS 2024, arXiv:2410.17509)")
