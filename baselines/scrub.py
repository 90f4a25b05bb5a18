"""SCRUB: teacher-student unlearning with alternating max (forget) and min (retain) steps.

Kurmanji, Triantafillou, Hayes, Triantafillou. "Towards Unbounded Machine Unlearning."
NeurIPS 2023. The student starts as the original model, the teacher is a frozen copy.
Each epoch e = 1..E: if e <= msteps, one "max" pass over the forget set minimising
-KL(teacher || student); then one "min" pass over the retain set minimising
alpha * KL(teacher || student) + gamma * CE(student, y). KL at temperature kd_T, scaled by
kd_T^2 (DistillKL of the reference code). Defaults = the reference code's CIFAR settings:
alpha 0.001, gamma 0.99, kd_T 4, msteps 2, SGD lr 5e-4, momentum 0.9, weight decay 5e-4,
3 epochs, batch 128 retain / 32 forget ("sgda_batch_size" / "del_batch_size"). Randomness: the
order of both passes, from the run seed. Embedded worlds set their own lr (``tasks/digits.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import Phase, train_loop
from unlearnbench.unlearning import register_method


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float) -> torch.Tensor:
    """KL(teacher || student) at temperature t, times t^2 (Hinton et al. 2015; SCRUB's DistillKL)."""
    return F.kl_div(F.log_softmax(student_logits / t, -1), F.softmax(teacher_logits / t, -1),
                    reduction="batchmean") * t * t


class Scrub(ClassifierMethod):
    name = "scrub"

    @dataclass
    class Config:
        epochs: int = 3  # reference code: sgda_epochs 3
        max_steps: int = 2  # reference code: msteps 2 (epochs with a forget "max" pass)
        lr: float = 5e-4  # reference code: sgda_learning_rate 5e-4
        alpha: float = 0.001  # reference code: weight of the retain KL term
        gamma: float = 0.99  # reference code: weight of the retain CE term
        kd_t: float = 4.0  # reference code: distillation temperature
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 128  # reference code: sgda_batch_size (retain)
        forget_batch_size: int = 32  # reference code: del_batch_size (forget)

    def run(self, model, task, config, data, seed):
        teacher = copy.deepcopy(model.module).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        f, r = data["forget"], data["retain"]

        def max_loss(module, x, y):
            with torch.no_grad():
                t = teacher(x)
            return -distill_kl(module(x), t, config.kd_t)

        def min_loss(module, x, y):
            with torch.no_grad():
                t = teacher(x)
            s = module(x)
            return config.alpha * distill_kl(s, t, config.kd_t) + config.gamma * F.cross_entropy(s, y)

        def plan(epoch: int):
            phases = [Phase(r["x"], r["y"], min_loss, config.batch_size)]
            if epoch < config.max_steps:
                phases.insert(0, Phase(f["x"], f["y"], max_loss, config.forget_batch_size))
            return phases

        train_loop(model.module, plan, seed=seed, **optim_kwargs(config))
        return model


register_method("scrub", "classifier", Scrub, description="teacher-student max/min unlearning",
                paper="Kurmanji et al., NeurIPS 2023 (SCRUB)")
