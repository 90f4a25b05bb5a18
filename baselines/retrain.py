"""Retrain: the exact unlearning gold standard — train from scratch on the retain set only.

The architecture is the original model's; the recipe is the task's from-scratch recipe
(``settings['train']``, the one that trained the original), with the run's own seed for the
initialisation and the data order: training seed = ``SEED_OFFSET`` + run seed. A world's
reference Retrain model (``world:retain``) is trained with the recipe's seed (0), so no run of
this method reproduces it: a Retrain row in a table is an *independent* retrain, and its Avg.
Gap is the noise floor of the benchmark (two exact retrains differ by their seeds). Give
``seed`` to train with that exact seed (``seed=0`` reproduces the digits reference bit for
bit). RTE = the real cost of retraining. "Retrain" in SalUn (Fan et al., ICLR 2024), Table 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.classifier_loop import ClassifierMethod
from unlearnbench.classifier_training import train_from_scratch
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method

#: run seed s trains with seed SEED_OFFSET + s (never the world recipes' seed 0)
SEED_OFFSET = 1000


class Retrain(ClassifierMethod):
    name = "retrain"

    @dataclass
    class Config:
        seed: int | None = None  # None: SEED_OFFSET + the run seed; an int: exactly that training seed
        epochs: int | None = None  # None: the task recipe's epochs

    def run(self, model, task, config, data, seed):
        recipe = dict(data.get("train_recipe") or {})
        if not recipe:
            raise UserError(f"task {task.name} has no training recipe, so it cannot be retrained")
        if config.epochs is not None:
            recipe["epochs"] = int(config.epochs)
        arch = data.get("architecture") or {}
        name, kwargs = (arch["name"], arch.get("kwargs") or {}) if arch.get("name") == model.architecture \
            else (model.architecture, model.kwargs)
        train_seed = SEED_OFFSET + int(seed) if config.seed is None else int(config.seed)
        out = train_from_scratch(name, kwargs, data["retain"]["x"], data["retain"]["y"], recipe, train_seed)
        out.source = model.source
        return out


register_method("retrain", "classifier", Retrain, description="train from scratch on the retain set (exact)",
                paper="SalUn (Fan et al., ICLR 2024) baseline 'Retrain'", reference=True)
