"""FT: fine-tune the original model on the retain set only (catastrophic forgetting of the rest).

Warnock et al. 2022; Golatkar et al. 2020; the "FT" baseline of SalUn (Fan et al., ICLR 2024):
loss = CE(model(x_r), y_r) over the retain set, SGD with momentum and weight decay at a constant
learning rate. Published CIFAR-10 settings (SalUn's ``Classification/README.md``: ``--unlearn FT
--unlearn_lr 0.01 --unlearn_epochs 10``; its appendix searches lr in [0.01, 0.1]; batch 256,
momentum 0.9, weight decay 5e-4 from its ``arg_parser.py``). Randomness: the data order, drawn
from the run seed. Embedded worlds set their own lr (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import Phase, cross_entropy, train_loop
from unlearnbench.unlearning import register_method


class FineTune(ClassifierMethod):
    name = "ft"

    @dataclass
    class Config:
        epochs: int = 10  # SalUn README: --unlearn_epochs 10
        lr: float = 0.01  # SalUn README: --unlearn_lr 0.01 (appendix: searched in [0.01, 0.1])
        momentum: float = 0.9  # SalUn arg_parser default
        weight_decay: float = 5e-4  # SalUn arg_parser default
        batch_size: int = 256  # SalUn arg_parser default

    def run(self, model, task, config, data, seed):
        r = data["retain"]
        train_loop(model.module, [Phase(r["x"], r["y"], cross_entropy, config.batch_size)], seed=seed,
                   **optim_kwargs(config))
        return model


register_method("ft", "classifier", FineTune, description="fine-tune on the retain set",
                paper="Warnock et al. 2022; SalUn (Fan et al., ICLR 2024) baseline 'FT'")
