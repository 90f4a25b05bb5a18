"""SalUn (classifier): random labelling restricted to the salient weights of the forget loss.

Fan et al. "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both
Image Classification and Generation" (ICLR 2024), Eq. (5)-(7):

* saliency map m_S = 1(|grad_theta l_f(theta_0; D_f)| >= gamma), gamma chosen so that the top
  ``1 - sparsity`` = 50 % of all weights (one global ranking across layers) are salient
  (SalUn's default, ``generate_mask.py`` ``hard_0.5``); l_f is the forget-set cross-entropy, the
  gradient is summed over forget mini-batches at theta_0 (SalUn's script also takes optimiser
  steps while accumulating — we take none, so the map is that of the original model);
* unlearning = RL (``rl.py``) on theta = m_S * theta_u + (1 - m_S) * theta_0: weights outside the
  map stay **bit-identical** to theta_0 through momentum and weight decay (the shared loop
  zeroes their gradients, restores them after every step and zeroes their momentum).

Published CIFAR-10 settings: SalUn's ``Classification/README.md`` (``--unlearn RL --unlearn_epochs
10 --unlearn_lr 0.1`` with the ``hard_0.5`` map), batch 256. Randomness: RL's random labels and
data order, from the run seed (the map itself is deterministic). Embedded worlds set their own
lr (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod, optim_kwargs
from unlearnbench.classifier_training import train_loop
from unlearnbench.baselines.rl import random_label_phases
from unlearnbench.threads import thread_policy
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method


def saliency_mask(module: nn.Module, x: torch.Tensor, y: torch.Tensor, keep: float = 0.5,
                  batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Bool mask per parameter: True for the ``keep`` share of weights with the largest |grad l_f|."""
    if not 0.0 < keep <= 1.0:
        raise UserError(f"salun: the salient share must be in (0, 1], got {keep}")
    module.eval()
    named = dict(module.named_parameters())
    grads = {n: torch.zeros_like(p) for n, p in named.items()}
    with thread_policy(module):
        for i in range(0, len(y), batch_size):
            module.zero_grad(set_to_none=True)
            (-F.cross_entropy(module(x[i:i + batch_size]), y[i:i + batch_size])).backward()
            for n, p in named.items():
                if p.grad is not None:
                    grads[n] += p.grad
    module.zero_grad(set_to_none=True)
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    k = int(round(keep * flat.numel()))
    order = torch.argsort(flat, descending=True, stable=True)
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[order[:k]] = True
    out, start = {}, 0
    for n, g in grads.items():
        out[n] = chosen[start:start + g.numel()].view_as(g)
        start += g.numel()
    return out


class SalUn(ClassifierMethod):
    name = "salun"

    @dataclass
    class Config:
        epochs: int = 10  # SalUn README: --unlearn_epochs 10
        lr: float = 0.1  # SalUn README: --unlearn_lr 0.1
        salient_share: float = 0.5  # SalUn default: top 50 % of weights by |grad| (generate_mask.py 'hard_0.5')
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 256  # SalUn arg_parser default

    def run(self, model, task, config, data, seed):
        f = data["forget"]
        mask = saliency_mask(model.module, f["x"], f["y"], config.salient_share, config.batch_size)
        train_loop(model.module, random_label_phases(data, config.batch_size, seed), seed=seed, mask=mask,
                   **optim_kwargs(config))
        model.meta["salient_share"] = config.salient_share
        return model


register_method("salun", "classifier", SalUn, description="saliency-masked random labelling",
                paper="Fan et al., ICLR 2024 (SalUn)")
