"""RL: random labelling — train on the forget set with random labels, and on the retain set.

Golatkar et al. 2020 / Hayase et al.; the "RL" baseline of SalUn (Fan et al., ICLR 2024),
``Classification/unlearn/RL.py`` (CIFAR-10 branch): each epoch, one pass over the forget set
with labels drawn uniformly from all classes per batch, then one pass over the retain set
with true labels. 10 epochs, lr searched in [0.01, 0.1] on CIFAR-10. Digits: 10 epochs, batch 64,
lr 1e-3. Sweep on digits/random-10 (seed 0 only, world v2, default-scale models; Avg. Gap to Retrain as the criterion,
as SalUn tuned each method):
lr 5e-4: 1.44 | **1e-3: 0.91** | 2e-3: 1.63 | 3e-3: 2.14 | 1e-2: 5.39 (MIA-Efficacy 32 vs Retrain 13:
overshoot) | 1e-3 x 5 epochs: 2.07 | 3e-3 x 5 epochs: 1.62. Every pass also fine-tunes on the
(whole) retain set, so on the small digits model lrs in SalUn's CIFAR range overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnbench.baselines.classifier_loop import ClassifierMethod, Phase, cross_entropy, optim_kwargs, train_loop
from unlearnbench.unlearning import register_method


def random_label_phases(data: dict, batch_size: int, seed: int):
    """``epoch -> [forget with random labels, retain]`` (labels seeded by run seed and epoch)."""
    f, r, k = data["forget"], data["retain"], int(data["num_classes"])

    def plan(epoch: int):
        g = torch.Generator().manual_seed(seed * 7919 + epoch)
        rand = torch.randint(0, k, f["y"].shape, generator=g)
        return [Phase(f["x"], rand, cross_entropy, batch_size), Phase(r["x"], r["y"], cross_entropy, batch_size)]

    return plan


class RandomLabel(ClassifierMethod):
    name = "rl"

    @dataclass
    class Config:
        epochs: int = 10  # SalUn appendix: 10 epochs
        lr: float = 1e-3  # SalUn appendix: searched in [0.01, 0.1] on CIFAR-10; 1e-3 tuned for digits (see above)
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 64

    def run(self, model, task, config, data, seed):
        train_loop(model.module, random_label_phases(data, config.batch_size, seed), seed=seed, **optim_kwargs(config))
        return model


register_method("rl", "classifier", RandomLabel, description="random labels on the forget set + retain fine-tuning",
                paper="Golatkar et al. 2020; SalUn (Fan et al., ICLR 2024) baseline 'RL'")
