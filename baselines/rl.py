"""RL: random labelling — train on the forget set with random labels, and on the retain set.

Golatkar et al. 2020 / Hayase et al.; the "RL" baseline of SalUn (Fan et al., ICLR 2024),
``Classification/unlearn/RL.py`` (CIFAR-10 branch): each epoch, one pass over the forget set
with labels drawn uniformly from all classes, then one pass over the retain set with true
labels; SGD with momentum and weight decay at a constant learning rate. Published CIFAR-10
settings: 10 epochs, lr 0.1 (SalUn's ``Classification/README.md`` runs this loss, with its
saliency mask, at ``--unlearn_lr 0.1 --unlearn_epochs 10``; appendix: searched in [0.01, 0.1]),
batch 256. Randomness: the random labels (fresh per epoch) and the data order, both from the
run seed. Embedded worlds set their own lr (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import Phase, cross_entropy, train_loop
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
        epochs: int = 10  # SalUn README: --unlearn_epochs 10
        lr: float = 0.1  # SalUn README: --unlearn_lr 0.1 (appendix: searched in [0.01, 0.1])
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 256

    def run(self, model, task, config, data, seed):
        train_loop(model.module, random_label_phases(data, config.batch_size, seed), seed=seed, **optim_kwargs(config))
        return model


register_method("rl", "classifier", RandomLabel, description="random labels on the forget set + retain fine-tuning",
                paper="Golatkar et al. 2020; SalUn (Fan et al., ICLR 2024) baseline 'RL'")
