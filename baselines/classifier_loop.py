"""The one training loop of the classifier track, shared by every classifier method.

A method describes an epoch as a list of :class:`Phase` s (a data set and a loss); the loop
shuffles each phase with a generator seeded from the run seed and the epoch, runs SGD with
momentum and weight decay (SalUn's optimiser), and, when given a weight-saliency ``mask``,
keeps every weight outside the mask **bit-identical**: gradients outside the mask are zeroed
before the step, and after the step the masked-out weights are copied back from their
saved values and their momentum buffers zeroed, so neither weight decay nor momentum can
move them (the failure STYLE.md warns about). :func:`train_from_scratch` is what the
embedded worlds and the ``retrain`` method use to train target / Retrain models.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.classifier import Classifier
from unlearnbench.threads import thread_policy

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Phase:
    """One pass over ``(x, y)`` in mini-batches of ``batch_size`` with ``loss(module, xb, yb)``."""

    x: torch.Tensor
    y: torch.Tensor
    loss: LossFn
    batch_size: int = 64


def cross_entropy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(module(x), y)


def run_seed() -> int:
    """The run's seed, as set by ``seed_everything`` before ``unlearn`` (torch's initial seed)."""
    return int(torch.initial_seed()) % (2**31)


def train_loop(module: nn.Module, phases: Callable[[int], Sequence[Phase]] | Sequence[Phase], *, epochs: int,
               lr: float, momentum: float = 0.9, weight_decay: float = 5e-4, seed: int = 0,
               schedule: str = "constant", mask: dict[str, torch.Tensor] | None = None,
               on_epoch: Callable[[int], None] | None = None, train_mode: bool = True,
               desc: str = "training") -> nn.Module:
    """SGD over ``phases`` (a list, or ``epoch -> list``) for ``epochs``; returns ``module``.

    ``schedule``: ``constant`` (SalUn's unlearning runs) or ``cosine`` (per step, to 0).
    ``mask``: parameter name -> bool tensor (True = may change); absent names are frozen.
    A progress bar (``desc``) counts the steps; ``--quiet`` hides it.
    """
    from unlearnbench.progress import bar

    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    named = dict(module.named_parameters())
    frozen = None
    if mask is not None:
        frozen = {n: p.detach().clone() for n, p in named.items()}
        mask = {n: mask.get(n, torch.zeros_like(p, dtype=torch.bool)).to(p.device) for n, p in named.items()}
    plan = phases if callable(phases) else (lambda e, _p=tuple(phases): _p)
    steps_per_epoch = sum(math.ceil(len(p.y) / p.batch_size) for p in plan(0)) or 1
    total = max(1, epochs * steps_per_epoch)
    module.train(train_mode)
    with thread_policy(module), bar(total, desc, "step") as steps:
        _epochs(module, plan, opt, named, mask, frozen, epochs=epochs, lr=lr, seed=seed, schedule=schedule,
                total=total, on_epoch=on_epoch, tick=steps.update)
    module.eval()
    return module


def _epochs(module, plan, opt, named, mask, frozen, *, epochs, lr, seed, schedule, total, on_epoch, tick) -> None:
    step = 0
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        for k, phase in enumerate(plan(epoch)):
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 101 + k)
            order = torch.randperm(len(phase.y), generator=g)
            for i in range(0, len(order), phase.batch_size):
                idx = order[i:i + phase.batch_size]
                if schedule == "cosine":
                    for group in opt.param_groups:
                        group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
                opt.zero_grad(set_to_none=False)
                loss = phase.loss(module, phase.x[idx], phase.y[idx])
                loss.backward()
                if mask is not None:
                    for n, p in named.items():
                        if p.grad is not None:
                            p.grad.mul_(mask[n])
                opt.step()
                if mask is not None:
                    _restore(named, mask, frozen, opt)
                step += 1
                tick(1)


@torch.no_grad()
def _restore(named: dict, mask: dict, frozen: dict, opt: torch.optim.Optimizer) -> None:
    for n, p in named.items():
        keep = mask[n]
        if bool(keep.all()):
            continue
        p.copy_(torch.where(keep, p, frozen[n]))
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            buf.mul_(keep)


def train_from_scratch(architecture: str, kwargs: dict, x: torch.Tensor, y: torch.Tensor, recipe: dict,
                       seed: int | None = None) -> Classifier:
    """Train a fresh ``architecture`` on ``(x, y)`` with ``recipe``; ``meta.unlearn_seconds`` = wall-clock.

    recipe keys: epochs, lr, momentum, weight_decay, batch_size, schedule, seed (used when
    ``seed`` is None). Deterministic for a given seed on a given machine.
    """
    s = int(recipe.get("seed", 0) if seed is None else seed)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG (and run seed) untouched
        torch.manual_seed(s)
        model = Classifier.new(architecture, kwargs)
    train_loop(model.module, [Phase(torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long), cross_entropy,
                                    int(recipe.get("batch_size", 64)))],
               epochs=int(recipe["epochs"]), lr=float(recipe["lr"]), momentum=float(recipe.get("momentum", 0.9)),
               weight_decay=float(recipe.get("weight_decay", 5e-4)), seed=s, schedule=recipe.get("schedule", "cosine"),
               desc=f"training {architecture}")
    model.meta["unlearn_seconds"] = time.perf_counter() - t0
    return model


class ClassifierMethod:
    """Base of classifier methods: clones the model, times ``run``, records the method in ``meta``.

    Subclasses set ``name``, ``Config`` and implement ``run(model, task, config, data, seed) -> Classifier``
    (they may modify ``model`` in place: it is already a copy).
    """

    name = ""
    modality = "classifier"
    Config: Any = None

    def unlearn(self, model: Classifier, task: Any, config: Any, *, data: dict, progress: bool = True) -> Classifier:
        seed = run_seed()
        t0 = time.perf_counter()
        out = self.run(model.clone(), task, config, data, seed)
        out.meta.update({"unlearn_seconds": time.perf_counter() - t0, "name": self.name, "method": self.name,
                         "seed": seed, "base_source": model.source})
        out.source = f"{model.source}+{self.name}"
        return out

    def run(self, model: Classifier, task: Any, config: Any, data: dict, seed: int) -> Classifier:  # pragma: no cover
        raise NotImplementedError


def optim_kwargs(config: Any) -> dict:
    """The SGD fields every iterative method's Config carries."""
    return {"epochs": config.epochs, "lr": config.lr, "momentum": config.momentum,
            "weight_decay": config.weight_decay}
