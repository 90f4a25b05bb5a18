"""What every classifier unlearning method shares: the base class and the run seed.

The training loop itself is the modality's one loop, :func:`unlearnbench.classifier_training.train_loop`
(the worlds train their models with it too); a method file holds its loss and describes its
epochs as :class:`~unlearnbench.classifier_training.Phase` s.

Seeds: :meth:`ClassifierMethod.unlearn` reads the run seed (set by ``seed_everything`` before
``unlearn``) and hands it to ``run``; every random choice a method makes — data order, random
labels, initialisation — is drawn from generators seeded with it, never from global state, so
the same seed gives the same weights and another seed other weights. Methods with no random
source at all (one-shot SSD and IU read their data in a fixed order, as their reference code
does) set ``deterministic = True``: their result is the same for every seed.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from unlearnbench.classifier import Classifier


def run_seed() -> int:
    """The run's seed, as set by ``seed_everything`` before ``unlearn`` (torch's initial seed)."""
    return int(torch.initial_seed()) % (2**31)


class ClassifierMethod:
    """Base of classifier methods: clones the model, times ``run``, records the method in ``meta``.

    Subclasses set ``name``, ``Config`` and implement ``run(model, task, config, data, seed) -> Classifier``
    (they may modify ``model`` in place: it is already a copy). ``deterministic = True`` declares
    that the method uses no randomness (the seed cannot change its result).
    """

    name = ""
    modality = "classifier"
    deterministic = False
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
