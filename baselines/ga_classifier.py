"""GA (classifier): gradient ascent on the forget set's cross-entropy.

Thudi et al. 2022 ("Unrolling SGD"); the "GA" baseline of SalUn (Fan et al., ICLR 2024),
``Classification/unlearn/GA.py``: loss = -CE(model(x_f), y_f) over the forget set, SGD with
momentum and weight decay at a constant learning rate. Published CIFAR-10 settings (SalUn's
``Classification/README.md``: ``--unlearn GA --unlearn_lr 0.0001 --unlearn_epochs 5``; appendix:
lr searched in [1e-5, 1e-3]; batch 256). Randomness: the forget-set order, from the run seed
(a forget set smaller than a batch is still reordered). GA has a cliff: below it the model
barely moves, above it the loss diverges; embedded worlds set their own lr (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import Phase, train_loop
from unlearnbench.unlearning import register_method


def ascent_loss(module, x, y):
    return -F.cross_entropy(module(x), y)


class GradientAscent(ClassifierMethod):
    name = "ga"

    @dataclass
    class Config:
        epochs: int = 5  # SalUn README: --unlearn_epochs 5
        lr: float = 1e-4  # SalUn README: --unlearn_lr 0.0001 (appendix: searched in [1e-5, 1e-3])
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 256

    def run(self, model, task, config, data, seed):
        f = data["forget"]
        train_loop(model.module, [Phase(f["x"], f["y"], ascent_loss, config.batch_size)], seed=seed,
                   **optim_kwargs(config))
        return model


register_method("ga", "classifier", GradientAscent, description="gradient ascent on the forget set",
                paper="Thudi et al. 2022; SalUn (Fan et al., ICLR 2024) baseline 'GA'")
