"""Worst-case forget sets (Unlearn-WorstCase), deterministic and cached.

Fan, Liu, Hero, Liu. "Challenging Forgets: Unveiling the Worst-Case Forget Sets in Machine
Unlearning." ECCV 2024; reference code ``OPTML-Group/Unlearn-WorstCase``, ``data-wise/``
(``main_selmu.py``, ``unlearn/impl.py``, ``unlearn/FT.py``, ``utils.py``). The worst-case
forget set is the subset the unlearning *cannot* erase, found by bi-level optimisation over
data-selection weights ``w`` (``w_i = 1``: sample i is forgotten):

    upper:  min_{w in S}  sum_i w_i * l_i(theta_u(w)) + gamma * ||w||^2
    lower:  theta_u(w) = unlearning of theta_0 by fine-tuning on sum_i (1 - w_i) * l_i(theta)
    S = {w in [0, 1]^N : sum_i w_i = m}      (m = budget = round(fraction * N))

Algorithm, as the reference code runs it (``--mode optm``, ``--unlearn w_FT``):

1. ``w`` starts as a random binary set of m samples (drawn with ``seed``);
2. each of ``select_epochs`` upper iterations restarts from theta_0 (the original model,
   here trained with the task's own recipe and seed, so on an embedded world it *is* the
   world's target) and runs the lower level: ``unlearn_steps`` shuffled epochs of
   **sign-SGD**, ``theta -= theta_lr * sign(grad)`` (the reference ``SignSGD.sign_step``: no
   momentum, no weight decay), on the batch *sum* of ``(1 - w_i) * CE_i`` (model in train mode);
3. because the lower level moves by gradient signs, d theta_u / d w = 0 almost everywhere, so
   the hyper-gradient is the direct term ``l_i(theta_u) + 2 gamma w_i`` — the per-sample
   losses after unlearning (``optimize_select``): ``w <- Proj_S(w - w_lr * (l + 2 gamma w))``,
   the projection by bisection on the shift (``utils.bisection``);
4. the forget set is the top-m of the last ``w`` (``main_evalmu.py`` reads ``w[-1]``); ties
   by index.

Deliberate differences: per-sample losses in step 3 are taken in eval mode (the reference leaves
BatchNorm in train mode, so its losses depend on the batch), and every random choice comes from
generators seeded with ``seed``. Defaults = the reference's (``arg_parser.py``), except
``theta_lr`` = 1e-3, the value of the README's CIFAR-10 command (argparse: 1e-2).

Behaviour (measured on the digits world, ``tasks/digits.py``): samples whose loss stays low
after the lower level gain weight, i.e. the set moves from random towards the data the rest of
the training set explains best. Run to convergence it reaches a set exact Retrain still fits
perfectly (UA 0, MIA-Efficacy ~0), as in the paper's Fig. 2 (Retrain UA 0 % on CIFAR-10's
worst-case 10 %), where the untouched original model is already at Retrain. ``w_lr`` scales
the steps by the size of the losses, so how far the selection goes depends on the model's loss
scale: the digits tasks fix it (see ``tasks/digits.py``).

The result (indices and a trace of the optimisation) is cached under
``$UNLEARNBENCH_HOME/worst_case/<sha256 of inputs>.json``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from unlearnbench.errors import UserError

ALGORITHM_VERSION = 2
DEFAULTS = {
    "select_epochs": 10,  # upper-level iterations (reference --select_epochs 10)
    "unlearn_steps": 10,  # lower-level sign-SGD epochs per iteration (reference --unlearn_steps 10)
    "theta_lr": 1e-3,     # lower-level sign step (reference README's CIFAR-10 command; argparse 1e-2)
    "w_lr": 0.01,         # upper-level step on w (reference --w_lr 0.01)
    "gamma": 0.0,         # weight of ||w||^2 (reference --gamma 0)
    "batch_size": 256,    # lower-level mini-batch (reference --batch_size 256)
    "seed": 0,            # initial random set and lower-level data order
}


def project_capped_simplex(v: np.ndarray, m: float, iters: int = 100) -> np.ndarray:
    """Euclidean projection of ``v`` onto {w in [0,1]^N, sum w = m}: clip(v - tau, 0, 1), tau by bisection."""
    lo, hi = float(v.min()) - 1.0, float(v.max())
    for _ in range(iters):
        tau = 0.5 * (lo + hi)
        if np.clip(v - tau, 0.0, 1.0).sum() > m:
            lo = tau
        else:
            hi = tau
    return np.clip(v - 0.5 * (lo + hi), 0.0, 1.0)


def _sign_sgd_unlearn(module, x, y, w, cfg: dict, epoch: int) -> None:
    """The lower level in place: sign-SGD on sum_i (1 - w_i) CE_i over shuffled mini-batches."""
    import torch
    from torch.nn import functional as F

    from unlearnbench.classifier_training import shuffle_order

    params = [p for p in module.parameters() if p.requires_grad]
    keep = torch.as_tensor(1.0 - w, dtype=torch.float32)
    bs, lr = int(cfg["batch_size"]), float(cfg["theta_lr"])
    module.train()
    for step in range(int(cfg["unlearn_steps"])):
        order = shuffle_order(len(y), int(cfg["seed"]), epoch * int(cfg["unlearn_steps"]) + step, 0)
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            loss = (keep[idx] * F.cross_entropy(module(x[idx]), y[idx], reduction="none")).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(lr * g.sign())


def _per_sample_loss(module, x, y, batch_size: int = 1024) -> np.ndarray:
    import torch
    from torch.nn import functional as F

    module.eval()
    with torch.no_grad():
        out = [F.cross_entropy(module(x[i:i + batch_size]), y[i:i + batch_size], reduction="none")
               for i in range(0, len(y), batch_size)]
    return torch.nan_to_num(torch.cat(out).double(), nan=1e4, posinf=1e4).numpy()


def select_worst_case(module, x, y, m: int, config: dict | None = None, *, progress: bool = False):
    """Bi-level worst-case selection of ``m`` of the samples ``(x, y)`` for the trained ``module``.

    Returns ``(sorted indices, trace)``; ``trace`` holds the upper objective sum_i w_i l_i per
    iteration and how many samples the final set shares with the initial random one.
    ``module`` is left with its original weights.
    """
    import copy

    import torch

    from unlearnbench.threads import thread_policy

    cfg = {**DEFAULTS, **(config or {})}
    n = len(y)
    if not 0 < m < n:
        raise UserError(f"worst-case budget must be between 1 and {n - 1} samples, got {m}")
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    theta0 = copy.deepcopy(module.state_dict())
    init = np.sort(np.random.default_rng(int(cfg["seed"])).permutation(n)[:m])
    w = np.zeros(n)
    w[init] = 1.0
    objective = []
    epochs = range(int(cfg["select_epochs"]))
    if progress:
        from unlearnbench.progress import bar

        epochs = bar(epochs, "worst-case forget set", "iter")
    with thread_policy(module):
        for epoch in epochs:
            module.load_state_dict(theta0)
            _sign_sgd_unlearn(module, x, y, w, cfg, epoch)
            loss = _per_sample_loss(module, x, y)
            objective.append(float(np.dot(w, loss)))
            w = project_capped_simplex(w - float(cfg["w_lr"]) * (loss + 2.0 * float(cfg["gamma"]) * w), float(m))
    module.load_state_dict(theta0)
    module.eval()
    chosen = np.sort(np.lexsort((np.arange(n), -w))[:m])
    return chosen, {"objective": objective, "kept_from_initial": int(np.intersect1d(chosen, init).size)}


def worst_case_forget_set(data, spec: dict, *, architecture: dict, recipe: dict, progress: bool = False) -> np.ndarray:
    """Sorted indices of the worst-case forget set of ``data``'s training split (cached by input hash).

    ``spec``: ``{"fraction": 0.1, <any DEFAULTS key>}``. theta_0 is trained from scratch on the
    whole training split with ``recipe`` (the task's own), so the set is a property of the task.
    """
    from unlearnbench.cache import cache_dir
    from unlearnbench.classifier_training import train_from_scratch
    from unlearnbench.results import atomic_write_json
    from unlearnbench.threads import thread_policy

    frac = float(spec.get("fraction", 0.1))
    if not 0.0 < frac < 1.0:
        raise UserError(f"worst-case forget fraction must be in (0, 1), got {frac}")
    unknown = sorted(set(spec) - set(DEFAULTS) - {"kind", "fraction"})
    if unknown:
        raise UserError(f"worst-case forget set: unknown setting(s) {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    n = len(data.y_train)
    m = int(round(frac * n))
    cfg = {**DEFAULTS, **{k: v for k, v in spec.items() if k in DEFAULTS}}
    key = hashlib.sha256(json.dumps({"data": data.sha256(), "m": m, "cfg": cfg, "arch": architecture,
                                     "recipe": recipe, "v": ALGORITHM_VERSION}, sort_keys=True).encode()).hexdigest()
    path = cache_dir("worst_case", f"{key}.json")
    if path.is_file():
        return np.asarray(json.loads(path.read_text())["indices"], dtype=np.int64)
    with thread_policy(0, reproducible=True):  # the set must not depend on the machine's core count
        proxy = train_from_scratch(architecture["name"], architecture.get("kwargs") or {}, data.x_train, data.y_train,
                                   recipe)
        idx, trace = select_worst_case(proxy.module, data.x_train, data.y_train, m, cfg, progress=progress)
    atomic_write_json(path, {"schema": "unlearnbench/worst-case/v2", "data_sha256": data.sha256(), "m": m,
                             "config": cfg, "architecture": architecture, "recipe": recipe,
                             "algorithm_version": ALGORITHM_VERSION, "proxy_weights_sha256": proxy.state_bytes_sha256(),
                             "trace": trace, "indices": idx.tolist()})
    return idx
