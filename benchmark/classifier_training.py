"""The one training loop of the classifier modality (plain SGD; no unlearning method in here).

The embedded worlds train their target and exact-Retrain models with :func:`train_from_scratch`,
and every classifier unlearning method (``baselines/``) describes its epochs as
:class:`Phase` s for :func:`train_loop`, so the modality has exactly one loop.

* **Order.** Each phase of each epoch is visited in a random order drawn from a generator
  seeded with ``(seed, epoch, phase)`` — never from torch's global RNG — so a run is a
  function of its seed alone, and a set smaller than one batch is still reordered per seed.
* **Optimiser.** SGD with momentum and weight decay (SalUn's optimiser for pre-training and
  unlearning); ``schedule="cosine"`` anneals the learning rate per step to 0, ``"constant"``
  keeps it.
* **Masks.** With a weight-saliency ``mask`` (parameter name -> bool tensor, True = may
  change; absent names are frozen) every weight outside the mask stays **bit-identical**:
  gradients outside the mask are zeroed before the step, and after the step the frozen weights
  are copied back and their momentum buffers zeroed, so neither weight decay nor momentum can
  move them (STYLE.md: "frozen means bit-identical").
* **Threads.** Runs under :func:`unlearnbench.threads.thread_policy` (tiny models: one thread).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

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
    """Mean cross-entropy of ``module(x)`` against integer labels ``y``."""
    return F.cross_entropy(module(x), y)


def shuffle_order(n: int, seed: int, epoch: int, phase: int) -> torch.Tensor:
    """The visiting order of a phase: a permutation of ``range(n)`` fixed by (seed, epoch, phase)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch * 101 + phase) % (2**63))
    return torch.randperm(n, generator=g)


def train_loop(module: nn.Module, phases: Callable[[int], Sequence[Phase]] | Sequence[Phase], *, epochs: int,
               lr: float, momentum: float = 0.9, weight_decay: float = 5e-4, seed: int = 0,
               schedule: str = "constant", mask: dict[str, torch.Tensor] | None = None,
               on_epoch: Callable[[int], None] | None = None, train_mode: bool = True,
               desc: str = "training") -> nn.Module:
    """SGD over ``phases`` (a list, or ``epoch -> list``) for ``epochs``; returns ``module`` (eval mode).

    A progress bar (``desc``) counts the steps; ``--quiet`` hides it.
    ``schedule``: ``constant`` (SalUn's unlearning runs) or ``cosine`` (per step, to 0).
    ``mask``: parameter name -> bool tensor (True = may change); absent names are frozen.
    ``on_epoch(epoch)`` is called before each epoch (e.g. to decay a penalty).
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}")
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
    step = 0
    from unlearnbench.progress import bar

    with thread_policy(module), bar(total, desc, "step") as steps:
        for epoch in range(epochs):
            if on_epoch is not None:
                on_epoch(epoch)
            for k, phase in enumerate(plan(epoch)):
                order = shuffle_order(len(phase.y), seed, epoch, k)
                for i in range(0, len(order), phase.batch_size):
                    idx = order[i:i + phase.batch_size]
                    if schedule == "cosine":
                        for group in opt.param_groups:
                            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
                    opt.zero_grad(set_to_none=False)
                    phase.loss(module, phase.x[idx], phase.y[idx]).backward()
                    if mask is not None:
                        for n, p in named.items():
                            if p.grad is not None:
                                p.grad.mul_(mask[n])
                    opt.step()
                    if mask is not None:
                        _restore(named, mask, frozen, opt)
                    step += 1
                    steps.update(1)
    module.eval()
    return module


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


def train_from_scratch(architecture: str, kwargs: dict, x, y, recipe: dict, seed: int | None = None) -> Classifier:
    """Train a freshly initialised ``architecture`` on ``(x, y)`` with ``recipe``.

    recipe keys: epochs, lr, momentum, weight_decay, batch_size, schedule (default cosine),
    seed. ``seed`` (default: the recipe's) fixes both the initialisation and the data order;
    the caller's global RNG is left untouched. ``meta["unlearn_seconds"]`` = wall-clock of the
    training (Retrain's RTE). Deterministic for a given seed, library versions and thread count.
    """
    s = int(recipe.get("seed", 0) if seed is None else seed)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s)
        model = Classifier.new(architecture, kwargs)
    train_loop(model.module, [Phase(torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long), cross_entropy,
                                    int(recipe.get("batch_size", 64)))],
               epochs=int(recipe["epochs"]), lr=float(recipe["lr"]), momentum=float(recipe.get("momentum", 0.9)),
               weight_decay=float(recipe.get("weight_decay", 5e-4)), seed=s, schedule=recipe.get("schedule", "cosine"),
               desc=f"training {architecture}")
    model.meta["unlearn_seconds"] = time.perf_counter() - t0
    return model
