"""GA (classifier): gradient ascent on the forget set's cross-entropy.

Thudi et al. 2022 ("Unrolling SGD"); the "GA" baseline of SalUn (Fan et al., ICLR 2024),
``Classification/unlearn/GA.py``: loss = -CE(model(x_f), y_f), 5 epochs, lr searched in
[1e-5, 1e-3] on CIFAR-10. Digits scale: 5 epochs, batch 64, lr 4e-2 — the 108-image forget
set gives 2 steps per epoch. Sweep on digits/random-10 (seed 0 only, world v2, default-scale models; Avg. Gap to Retrain as the criterion,
as SalUn tuned each method), 5 epochs unless noted:
lr 1e-3: 4.55 | 3e-3: 4.32 | 1e-2: 4.28 | 2e-2: 4.25 | 3e-2: 3.21 | **4e-2: 2.12** | 5e-2: 9.39 |
1e-1: 84.4 (diverged) | 3e-2 x 10 epochs: 67.2 (diverged). GA has a cliff: below 3e-2 it barely moves
the model, above 4e-2 it destroys it. (World v1 had picked 1e-2.)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod, Phase, optim_kwargs, train_loop
from unlearnbench.unlearning import register_method


def ascent_loss(module, x, y):
    return -F.cross_entropy(module(x), y)


class GradientAscent(ClassifierMethod):
    name = "ga"

    @dataclass
    class Config:
        epochs: int = 5  # SalUn appendix: 5 epochs
        lr: float = 4e-2  # SalUn appendix: [1e-5, 1e-3] on CIFAR-10; 4e-2 tuned for digits (see above)
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 64

    def run(self, model, task, config, data, seed):
        f = data["forget"]
        train_loop(model.module, [Phase(f["x"], f["y"], ascent_loss, config.batch_size)], seed=seed,
                   **optim_kwargs(config))
        return model


register_method("ga", "classifier", GradientAscent, description="gradient ascent on the forget set",
                paper="Thudi et al. 2022; SalUn (Fan et al., ICLR 2024) baseline 'GA'")
