"""SSD: Selective Synaptic Dampening (retrain-free, one shot).

Foster, Schoepf, Brintrup. "Fast Machine Unlearning Without Retraining Through Selective
Synaptic Dampening." AAAI 2024. Importances are diagonal Fisher estimates
I = E[(grad_theta l)^2] over the full training data D (retain + forget) and over D_f; for
every parameter with I_Df > alpha * I_D it multiplies theta by beta = min(lambda * I_D / I_Df, 1).
As in the reference code (``if-loops/selective-synaptic-dampening``, ``src/forget_random_main.py``
and ``ssd.py``): the importance is the mean over mini-batches of the squared gradient of the
batch-mean loss, with the data read in a fixed order (retain then forget, batch 128, no
shuffling), alpha (selection weighting) = 10 and lambda (dampening constant) = 1.
Deterministic: no random source, so every seed gives the same model. Embedded worlds set their
own alpha (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod
from unlearnbench.threads import thread_policy
from unlearnbench.unlearning import register_method


def fisher_diagonal(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """Mean over mini-batches (in order) of the squared gradient of the batch cross-entropy (eval mode)."""
    module.eval()
    named = dict(module.named_parameters())
    acc = {n: torch.zeros_like(p) for n, p in named.items()}
    batches = 0
    with thread_policy(module):
        for i in range(0, len(y), batch_size):
            module.zero_grad(set_to_none=True)
            F.cross_entropy(module(x[i:i + batch_size]), y[i:i + batch_size]).backward()
            for n, p in named.items():
                if p.grad is not None:
                    acc[n] += p.grad.detach() ** 2
            batches += 1
    module.zero_grad(set_to_none=True)
    return {n: a / max(batches, 1) for n, a in acc.items()}


class SelectiveSynapticDampening(ClassifierMethod):
    name = "ssd"
    deterministic = True

    @dataclass
    class Config:
        alpha: float = 10.0  # reference code: selection_weighting = 10
        dampening: float = 1.0  # reference code: dampening_constant (lambda) = 1
        batch_size: int = 128  # reference code: DataLoader batch_size 128

    def run(self, model, task, config, data, seed):
        f, r = data["forget"], data["retain"]
        full_x, full_y = torch.cat([r["x"], f["x"]]), torch.cat([r["y"], f["y"]])  # ConcatDataset((retain, forget))
        imp_d = fisher_diagonal(model.module, full_x, full_y, config.batch_size)
        imp_f = fisher_diagonal(model.module, f["x"], f["y"], config.batch_size)
        with torch.no_grad():
            for n, p in model.module.named_parameters():
                selected = imp_f[n] > config.alpha * imp_d[n]
                beta = torch.clamp(config.dampening * imp_d[n] / imp_f[n].clamp_min(1e-30), max=1.0)
                p.mul_(torch.where(selected, beta, torch.ones_like(beta)))
        return model


register_method("ssd", "classifier", SelectiveSynapticDampening, description="selective synaptic dampening (one shot)",
                paper="Foster et al., AAAI 2024")
