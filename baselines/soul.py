"""SOUL: second-order optimization for LLM unlearning (Jia, Zhang, Zhang, Liu, Runwal, Diffenderfer,
Kailkhura, Liu 2024, "SOUL: Unlocking the Power of Second-Order Optimization for LLM
Unlearning", EMNLP 2024, arXiv:2404.18239; code OPTML-Group/SOUL).

SOUL keeps an unlearning loss (GA, GradDiff, NPO/PO ...) and swaps AdamW for the Sophia
optimizer (:class:`~unlearnbench.baselines.soul_optimizer.SophiaG`): a clipped Newton-like
step ``sign(m)·min(|m|/max(ρh, ε), 1)`` with a diagonal Hessian estimate ``h`` refreshed every
``k`` steps. Hessian estimators (Sophia, Liu et al. 2023, Algorithms 1-2):

* ``gnb`` (default; SophiaG): Gauss-Newton-Bartlett. Sample labels ``ŷ ~ softmax(f(θ, x))`` at
  the answer positions of the step's forget (and retain, when the loss uses it) batch,
  ``ĝ = ∇ mean CE(f(θ, x), ŷ)`` and ``ĥ = B · ĝ ⊙ ĝ`` with ``B`` the number of sampled tokens;
* ``hutchinson`` (SophiaH): ``ĥ = u ⊙ ∇(∇L·u)``, ``u ~ N(0, I)``, on the unlearning loss itself.

Published settings (SOUL TOFU configs): ``betas=(0.9, 0.95)``, ``rho=0.04``, weight decay 0.1,
lr 5e-6 (SO-GradDiff) / 1e-5 (SO-PO), 5 epochs; Sophia's hessian interval ``k=10``. The
loop's linear warm-up/decay schedule drives Sophia's learning rate.

How it runs on the shared loop: the wrapped method is trained by ``llm_loop.train`` as usual;
for the duration of the call an optimizer *pre*-step hook (scoped to this run's parameters)
performs the Sophia step with the clipped gradients and clears them, so the loop's AdamW
step has nothing to do. Once ``llm_loop.train`` calls ``method.make_optimizer(params,
config)`` the hook can be replaced by :meth:`Soul.make_optimizer` (requested to the lead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unlearnbench.baselines.llm_loop import LLMMethod
from unlearnbench.baselines.wagle import resolve_wrapped
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method

ESTIMATORS = ("gnb", "hutchinson")


def _answer_logits(model, part: dict):
    out = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    sel = part["labels"][:, 1:] != -100
    return out[:, :-1][sel]


def gnb_estimate(model, parts: list[dict], params: list, generator) -> dict:
    """Gauss-Newton-Bartlett diagonal Hessian estimate ``B · ĝ ⊙ ĝ`` (Sophia, Algorithm 2)."""
    import torch
    import torch.nn.functional as F

    logits = torch.cat([_answer_logits(model, p) for p in parts]).float()
    with torch.no_grad():
        y = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    b = logits.shape[0]
    return {p: b * g * g for p, g in zip(params, grads) if g is not None}


def hutchinson_estimate(loss, params: list, generator) -> dict:
    """Hutchinson diagonal Hessian estimate ``u ⊙ (H u)``, ``u ~ N(0, I)`` (Sophia, Algorithm 1)."""
    import torch

    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    us = [torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype) for p, _ in pairs]
    hvps = torch.autograd.grad(sum((g * u).sum() for (_, g), u in zip(pairs, us)), [p for p, _ in pairs])
    return {p: u * hv for (p, _), u, hv in zip(pairs, us, hvps)}


@dataclass
class SoulConfig:
    loss: str = "graddiff"       # wrapped loss: ga, graddiff, npo (SOUL: GA, GradDiff, PO, NPO)
    rho: float = 0.04            # SOUL TOFU configs
    beta1: float = 0.9           # SOUL TOFU configs: betas_low
    beta2: float = 0.95          # SOUL TOFU configs: betas_high
    hessian_interval: int = 10   # k: Sophia's hess_interval
    estimator: str = "gnb"       # gnb (SophiaG) or hutchinson (SophiaH)
    loss_config: dict = field(default_factory=dict)  # overrides of the wrapped method's own Config fields
    epochs: int | None = None        # None: the wrapped method's default (same for the fields below)
    max_steps: int | None = None
    lr: float | None = None          # SOUL (Llama2-7B TOFU): 5e-6 GradDiff, 1e-5 PO
    batch_size: int | None = None
    grad_accum: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None  # SOUL: 0.1
    max_grad_norm: float | None = None
    seed: int | None = None


class Soul(LLMMethod):
    name = "soul"
    Config = SoulConfig

    def make_optimizer(self, params, config):
        """The Sophia optimizer for ``params`` (for a loop that asks methods for their optimizer)."""
        from unlearnbench.baselines.soul_optimizer import SophiaG

        return SophiaG(params, lr=config.lr, betas=(self._cfg.beta1, self._cfg.beta2), rho=self._cfg.rho,
                       weight_decay=config.weight_decay)

    def unlearn(self, model, task, config, *, data: dict, progress: bool = True):
        import torch
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        from unlearnbench.baselines.soul_optimizer import SophiaG

        if config.estimator not in ESTIMATORS:
            raise UserError(f"soul estimator must be one of {', '.join(ESTIMATORS)}, not {config.estimator!r}")
        if config.hessian_interval < 1:
            raise UserError(f"hessian_interval must be >= 1, got {config.hessian_interval}")
        if config.rho <= 0:
            raise UserError(f"rho must be > 0, got {config.rho}")
        inner, inner_cfg = resolve_wrapped(config)
        self._cfg = config
        net = model.model
        params = [p for p in net.parameters() if p.requires_grad]
        ids = {id(p) for p in params}
        sophia = self.make_optimizer(params, inner_cfg)
        seed = torch.initial_seed() % (2**31) if inner_cfg.seed is None else int(inner_cfg.seed)
        gen = torch.Generator(device=model.device).manual_seed(seed + 7919)
        stash: dict = {"batch": None, "ctx": None, "t": 0}
        inner_loss, inner_setup = inner.loss, inner.setup

        def loss(ctx, batch):  # remember the step's batch for the Hessian estimate
            stash["batch"], stash["ctx"] = batch, ctx
            return inner_loss(ctx, batch)

        def setup(ctx):
            stash["ctx"] = ctx
            inner_setup(ctx)

        inner.loss, inner.setup = loss, setup

        def estimate():
            batch, ctx = stash["batch"], stash["ctx"]
            live = [p for p in params if p.grad is not None]
            saved = [p.grad.detach().clone() for p in live]
            with torch.enable_grad():
                if config.estimator == "gnb":
                    parts = [batch["forget"]] + ([batch["retain"]] if inner.needs_retain and "retain" in batch else [])
                    est = gnb_estimate(net, parts, params, gen)
                else:  # double backward: use the math attention kernel (flash/efficient have no 2nd derivative)
                    from torch.nn.attention import SDPBackend, sdpa_kernel

                    with sdpa_kernel(SDPBackend.MATH):
                        est = hutchinson_estimate(inner_loss(ctx, batch)[0], params, gen)
            for p, g in zip(live, saved):
                p.grad = g
            return est

        def pre_step(opt, args, kwargs):
            if isinstance(opt, SophiaG) or not any(id(q) in ids for g in opt.param_groups for q in g["params"]):
                return
            stash["t"] += 1
            for g in sophia.param_groups:  # the loop's scheduler sets the lr on its optimizer
                g["lr"] = opt.param_groups[0]["lr"]
            if (stash["t"] - 1) % config.hessian_interval == 0:  # t mod k = 1 (SOUL Algorithm 1)
                sophia.update_hessian(estimate())
            sophia.step()
            for p in params:  # the loop's AdamW then skips every parameter
                p.grad = None

        handle = register_optimizer_step_pre_hook(pre_step)
        try:
            out = inner.unlearn(model, task, inner_cfg, data=data, progress=progress)
        finally:
            handle.remove()
            inner.loss, inner.setup = inner_loss, inner_setup
        out.name = f"{model.name}+soul({config.loss})"
        out.sophia_steps = stash["t"]
        return out


register_method("soul", "llm", "unlearnbench.baselines.soul:Soul",
                description="Sophia second-order optimizer (clipped, diagonal Hessian) for ga/graddiff/npo losses",
                paper="Jia et al. 2024, SOUL (EMNLP 2024, arXiv:2404.18239)")
