"""l1-sparse: fine-tune on the retain set with an l1 penalty that decays linearly to zero.

Jia et al. "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS 2023), Eq. (4): the
unlearning objective CE(retain) + gamma_t * ||theta||_1, with gamma_t = gamma * (1 - t / T)
per epoch t, as in SalUn's ``Classification/unlearn/FT.py`` (``FT_l1``). Published CIFAR-10
settings: SalUn's ``Classification/README.md`` (``--unlearn FT_prune --unlearn_lr 0.01
--unlearn_epochs 10``), gamma = 5e-4 (Jia et al.; SalUn's appendix searches [5e-5, 1e-4] and
up), batch 256. Randomness: the data order, from the run seed. Embedded worlds set their own lr
(``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import Phase, train_loop
from unlearnbench.unlearning import register_method


class L1Sparse(ClassifierMethod):
    name = "l1-sparse"

    @dataclass
    class Config:
        epochs: int = 10  # SalUn README: --unlearn_epochs 10
        lr: float = 0.01  # SalUn README: --unlearn_lr 0.01
        alpha: float = 5e-4  # Jia et al. 2023: gamma = 5e-4, linearly decayed to 0
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 256  # SalUn arg_parser default

    def run(self, model, task, config, data, seed):
        r = data["retain"]
        state = {"alpha": config.alpha}

        def loss(module, x, y):
            l1 = torch.stack([p.abs().sum() for p in module.parameters()]).sum()
            return F.cross_entropy(module(x), y) + state["alpha"] * l1

        def on_epoch(epoch: int) -> None:
            state["alpha"] = config.alpha * (1 - epoch / config.epochs)

        train_loop(model.module, [Phase(r["x"], r["y"], loss, config.batch_size)], seed=seed, on_epoch=on_epoch,
                   **optim_kwargs(config))
        return model


register_method("l1-sparse", "classifier", L1Sparse, description="retain fine-tuning with a decaying l1 penalty",
                paper="Jia et al., NeurIPS 2023 ('Model Sparsity Can Simplify Machine Unlearning')")
