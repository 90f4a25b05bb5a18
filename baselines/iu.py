"""IU: influence unlearning with the WoodFisher inverse-Hessian approximation.

Koh & Liang 2017; Izzo et al. 2021; Jia et al. 2023 ("IU"), exactly as SalUn's
``Classification/unlearn/Wfisher.py``: with n_f forget and n_r retain samples,

    v = grad l(D_f) * n_f / (n_f + n_r)  -  grad l(D_r) * n_f / ((n_f + n_r) * n_r)   (sum-weighted batch grads)
    theta <- theta + alpha * H^-1 v,

H^-1 v from the WoodFisher recursion (Singh & Alistarh 2020) over per-sample retain
gradients (batch size 1, the first ``fisher_samples`` + 2 retain samples in order) with
dampening N = 1000: k <- k - (k.g / (N + o.g)) o, o <- o - (o.g / (N + o.g)) o (with o
initialised to the first gradient, as in the reference code). alpha is the one tuned knob
(SalUn appendix: searched in [1, 20] on CIFAR-10; 10 here, the middle of that range — SalUn's
README leaves it to the user). Deterministic: the reference reads every loader unshuffled, so
every seed gives the same model. Embedded worlds set their own alpha (``tasks/digits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unlearnbench.baselines.classifier_loop import ClassifierMethod
from unlearnbench.threads import thread_policy
from unlearnbench.unlearning import register_method


def _flat_grad(module, x, y) -> torch.Tensor:
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(F.cross_entropy(module(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads])


def woodfisher(module, x, y, v: torch.Tensor, n_damp: float, limit: int) -> torch.Tensor:
    """SalUn's ``woodfisher``: approximate H^-1 v with per-sample gradients of (x, y)."""
    k_vec, o_vec = v.clone(), None
    for idx in range(len(y)):
        g = _flat_grad(module, x[idx:idx + 1], y[idx:idx + 1])
        with torch.no_grad():
            if o_vec is None:
                o_vec = g.clone()
            else:
                tmp = torch.dot(o_vec, g)
                k_vec -= (torch.dot(k_vec, g) / (n_damp + tmp)) * o_vec
                o_vec -= (tmp / (n_damp + tmp)) * o_vec
        if idx > limit:
            break
    return k_vec


class InfluenceUnlearning(ClassifierMethod):
    name = "iu"
    deterministic = True

    @dataclass
    class Config:
        alpha: float = 10.0  # SalUn appendix: searched in [1, 20] on CIFAR-10
        dampening: float = 1000.0  # SalUn's woodfisher: N = 1000
        fisher_samples: int = 1000  # SalUn's woodfisher stops after N retain samples
        batch_size: int = 256  # SalUn arg_parser default (forget / retain gradient sums)

    def run(self, model, task, config, data, seed):
        module = model.module.eval()
        f, r = data["forget"], data["retain"]
        with thread_policy(module):
            def grad_sum(x, y):
                total = None
                for i in range(0, len(y), config.batch_size):
                    g = _flat_grad(module, x[i:i + config.batch_size], y[i:i + config.batch_size]) * len(y[i:i + config.batch_size])
                    total = g if total is None else total + g
                return total

            n_f, n_r = len(f["y"]), len(r["y"])
            forget_grad = grad_sum(f["x"], f["y"]) / (n_f + n_r)
            retain_grad = grad_sum(r["x"], r["y"]) * n_f / ((n_f + n_r) * n_r)
            perturb = woodfisher(module, r["x"], r["y"], forget_grad - retain_grad, config.dampening,
                                 config.fisher_samples)
        with torch.no_grad():
            start = 0
            for p in module.parameters():
                if p.requires_grad:
                    p.add_(config.alpha * perturb[start:start + p.numel()].view_as(p))
                    start += p.numel()
        return model


register_method("iu", "classifier", InfluenceUnlearning, description="influence unlearning (WoodFisher)",
                paper="Koh & Liang 2017; Izzo et al. 2021; Jia et al. 2023 (IU, SalUn's Wfisher.py)")
