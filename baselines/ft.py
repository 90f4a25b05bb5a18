"""FT: fine-tune the original model on the retain set only (catastrophic forgetting of the rest).

Warnock et al. 2022; Golatkar et al. 2020; as the "FT" baseline of SalUn (Fan et al., ICLR
2024). SalUn's CIFAR-10 settings: 10 epochs, SGD lr searched in [0.01, 0.1], momentum 0.9,
weight decay 5e-4. Digits scale: same epochs, batch 64 (SalUn: 256), lr 0.1 (the top of SalUn's
range). Sweep on digits/random-10 (seed 0 only, world v2, default-scale models; Avg. Gap to Retrain as the criterion,
as SalUn tuned each method):
lr 0.01: 4.32 | 0.03: 3.68 | 0.05: 3.95 | **0.1: 1.83**.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.classifier_loop import ClassifierMethod, Phase, cross_entropy, optim_kwargs, train_loop
from unlearnbench.unlearning import register_method


class FineTune(ClassifierMethod):
    name = "ft"

    @dataclass
    class Config:
        epochs: int = 10  # SalUn appendix: 10 epochs
        lr: float = 0.1  # SalUn appendix: searched in [0.01, 0.1]; 0.1 tuned for digits (see above)
        momentum: float = 0.9  # SalUn code default
        weight_decay: float = 5e-4  # SalUn code default
        batch_size: int = 64  # SalUn: 256 on CIFAR; 64 for the 1.4 k-image digits world

    def run(self, model, task, config, data, seed):
        r = data["retain"]
        train_loop(model.module, [Phase(r["x"], r["y"], cross_entropy, config.batch_size)], seed=seed,
                   **optim_kwargs(config))
        return model


register_method("ft", "classifier", FineTune, description="fine-tune on the retain set",
                paper="Warnock et al. 2022; SalUn (Fan et al., ICLR 2024) baseline 'FT'")
