"""Retrain: the exact unlearning gold standard — train from scratch on the retain set only.

The architecture is the original model's; the recipe is the task's from-scratch recipe
(``settings['train']``, as used to train the original). With ``seed=None`` the recipe's own
seed is used, which reproduces the task's reference Retrain model bit for bit (so its
Avg. Gap is exactly 0 and its RTE is the real cost of retraining); give a seed for an
independent retrain. Cited as "Retrain" in SalUn (Fan et al., ICLR 2024), Table 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.classifier_loop import ClassifierMethod, train_from_scratch
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method


class Retrain(ClassifierMethod):
    name = "retrain"

    @dataclass
    class Config:
        seed: int | None = None  # None: the task recipe's seed (= the reference Retrain model)
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
        out = train_from_scratch(name, kwargs, data["retain"]["x"], data["retain"]["y"], recipe, config.seed)
        out.source = model.source
        return out


register_method("retrain", "classifier", Retrain, description="train from scratch on the retain set (exact)",
                paper="SalUn (Fan et al., ICLR 2024) baseline 'Retrain'", reference=True)
