"""Worst-case forget sets (Unlearn-WorstCase), deterministic and cached.

Fan, Liu, Hero, Liu. "Challenging Forgets: Unveiling the Worst-Case Forget Sets in Machine
Unlearning." ECCV 2024. The worst-case forget set is the subset of the training data that
is hardest to forget, found by bi-level optimisation over data-selection weights:

    upper:  min_{w in S}  F(w) = (1/m) sum_i w_i * l_i(theta_u(w))            (forget loss after unlearning)
    lower:  theta_u(w) = unlearning of theta_0 on the retain set implied by w  (weights 1 - w_i)
    S = {w in [0, 1]^N : sum_i w_i = m}     (m = budget = fraction * N)

Samples whose loss stays *low* after unlearning on the rest are those the model still
"knows" — forgetting them is hardest; then w is binarised to the budget (top-m).

What this implementation does (approximations for CPU scale, all deliberate):

1. theta_0 = a proxy model trained from scratch on all training data with the task's own
   recipe (architecture and hyper-parameters), so the forget set is a property of the task,
   not of whichever model is later evaluated (the paper uses the original model).
2. Lower level = ``inner_steps`` steps of gradient descent on the (1 - w)-weighted retain
   cross-entropy (fine-tuning, the paper's default unlearner), *unrolled* and
   differentiated through (truncated back-propagation), instead of solving it to
   convergence and using an implicit-function hypergradient.
3. Upper level = ``outer_steps`` sign-based projected gradient steps on w (step
   ``outer_lr``) with an exact Euclidean projection onto S (bisection on the shift).
4. On data sets larger than ``batch_size`` each outer step works on a seeded random batch
   of samples (their weights alone move); the digits world (1,437 images) uses full batches.
5. Binarisation: top-m of w; ties broken by lower proxy loss l_i(theta_0), then by index.

Everything is deterministic (fixed seeds, no data-dependent randomness) and the result is
cached under ``$UNLEARNBENCH_HOME/worst_case/<sha256 of inputs>.json``.
"""

from __future__ import annotations

import hashlib
import json
import numpy as np

from unlearnbench.errors import UserError

ALGORITHM_VERSION = 1
DEFAULTS = {
    "outer_steps": 12,   # sign-PGD iterations on w
    "outer_lr": 0.1,     # step on w per iteration (w in [0, 1])
    "inner_steps": 3,    # unrolled fine-tuning steps of the lower level
    "inner_lr": 0.05,    # their learning rate (= the digits recipe's peak lr)
    "batch_size": 4096,  # samples per outer step (full batch below this)
    "seed": 0,
}


def project_capped_simplex(v: np.ndarray, m: float, iters: int = 60) -> np.ndarray:
    """Euclidean projection of ``v`` onto {w in [0,1]^N, sum w = m} (bisection on tau in clip(v - tau))."""
    lo, hi = float(v.min()) - 1.0, float(v.max())
    for _ in range(iters):
        tau = 0.5 * (lo + hi)
        if np.clip(v - tau, 0.0, 1.0).sum() > m:
            lo = tau
        else:
            hi = tau
    return np.clip(v - 0.5 * (lo + hi), 0.0, 1.0)


def _per_sample_loss(module, params, x, y):
    from torch.func import functional_call
    from torch.nn import functional as F

    return F.cross_entropy(functional_call(module, params, (x,)), y, reduction="none") if params is not None \
        else F.cross_entropy(module(x), y, reduction="none")


def select_worst_case(module, x, y, m: int, config: dict | None = None) -> np.ndarray:
    """Bi-level worst-case selection of ``m`` samples of ``(x, y)`` for a trained ``module``."""
    import torch

    cfg = {**DEFAULTS, **(config or {})}
    n = len(y)
    if not 0 < m < n:
        raise UserError(f"worst-case budget must be between 1 and {n - 1} samples, got {m}")
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    module.eval()  # BatchNorm with running statistics: per-sample losses independent of the batch
    theta0 = {k: v.detach() for k, v in module.named_parameters()}
    buffers = dict(module.named_buffers())
    with torch.no_grad():
        loss0 = _per_sample_loss(module, None, x, y).numpy()
    w = np.full(n, m / n)
    rng = np.random.default_rng(int(cfg["seed"]))
    from unlearnbench.progress import bar

    for _ in bar(range(int(cfg["outer_steps"])), "worst-case forget set", "step"):
        batch = np.arange(n) if n <= cfg["batch_size"] else np.sort(rng.choice(n, int(cfg["batch_size"]), replace=False))
        wb = torch.tensor(w[batch], dtype=torch.float32, requires_grad=True)
        xb, yb = x[batch], y[batch]
        params = {k: v.clone().requires_grad_(True) for k, v in theta0.items()}
        for _ in range(int(cfg["inner_steps"])):
            lr_ = _per_sample_loss(module, {**params, **buffers}, xb, yb)
            retain_w = 1.0 - wb
            inner = (retain_w * lr_).sum() / retain_w.sum().clamp_min(1e-8)
            grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
            params = {k: p - float(cfg["inner_lr"]) * g for (k, p), g in zip(params.items(), grads)}
        lf = _per_sample_loss(module, {**params, **buffers}, xb, yb)
        m_b = max(float(m) * len(batch) / n, 1.0)
        outer = (wb * lf).sum() / m_b
        (g,) = torch.autograd.grad(outer, [wb])
        step = np.zeros(n)
        step[batch] = np.sign(g.detach().numpy())
        w = project_capped_simplex(w - float(cfg["outer_lr"]) * step, float(m))
    order = np.lexsort((np.arange(n), loss0, -w))  # last key is primary: high w, then low proxy loss, then index
    return np.sort(order[:m])


def worst_case_forget_set(data, spec: dict, *, architecture: dict, recipe: dict, progress: bool = False) -> np.ndarray:
    """Sorted indices of the worst-case forget set of ``data``'s training split (cached by input hash)."""
    from unlearnbench.cache import cache_dir
    from unlearnbench.results import atomic_write_json

    frac = float(spec.get("fraction", 0.1))
    if not 0.0 < frac < 1.0:
        raise UserError(f"worst-case forget fraction must be in (0, 1), got {frac}")
    n = len(data.y_train)
    m = int(round(frac * n))
    cfg = {**DEFAULTS, **{k: v for k, v in spec.items() if k in DEFAULTS}}
    key = hashlib.sha256(json.dumps({"data": data.sha256(), "m": m, "cfg": cfg, "arch": architecture,
                                     "recipe": recipe, "v": ALGORITHM_VERSION}, sort_keys=True).encode()).hexdigest()
    path = cache_dir("worst_case", f"{key}.json")
    if path.is_file():
        cached = json.loads(path.read_text())
        return np.asarray(cached["indices"], dtype=np.int64)
    from unlearnbench.baselines.classifier_loop import train_from_scratch
    from unlearnbench.threads import thread_policy

    with thread_policy(0, reproducible=True):  # the proxy too: the forget set must not depend on the machine
        proxy = train_from_scratch(architecture["name"], architecture.get("kwargs") or {}, data.x_train, data.y_train,
                                   recipe)
        idx = select_worst_case(proxy.module, data.x_train, data.y_train, m, cfg)
    atomic_write_json(path, {"schema": "unlearnbench/worst-case/v1", "data_sha256": data.sha256(), "m": m,
                             "config": cfg, "architecture": architecture, "recipe": recipe,
                             "algorithm_version": ALGORITHM_VERSION, "indices": idx.tolist()})
    return idx
