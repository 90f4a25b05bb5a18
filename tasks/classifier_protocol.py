"""The ``classifier`` protocol: SalUn-style scoring of image classifiers after unlearning.

A classifier task's ``settings`` say where its images come from and which training
samples form the forget set:

* ``data``: ``"module:function"`` returning :class:`ClassifierData` for ``task.source``
  (e.g. ``unlearnbench.tasks.digits:load_data``);
* ``forget``: ``{"kind": "random", "fraction": 0.1, "seed": 0}`` (SalUn random forgetting),
  ``{"kind": "class", "class": k}`` (class-wise forgetting: every training image of class k),
  or ``{"kind": "worst", "fraction": 0.1, ...}`` (Unlearn-WorstCase, see ``worst_case.py``);
* ``train``: the recipe (epochs, lr, ...) that trains target / Retrain models from scratch.

Splits (SalUn, Sec. 5): ``forget`` = the chosen training samples, ``retain`` = the other
training samples (in dataset order, which matters for MIA's shadow set), ``test`` = the test
set, minus the forgotten class in class-wise forgetting.

``infer`` makes one pass per split and keeps, per sample: label, prediction, ``correct``,
true-class ``confidence`` (softmax) and prediction ``entropy`` (non-finite logits of a
diverged model are mapped to 0 / +-1e4 first); when the checkpoint records
the wall-clock of the unlearning run that made it, one ``run`` row carries
``unlearn_seconds`` (for RTE). ``aggregate`` turns rows into UA, RA, TA, MIA-Efficacy, RTE and,
with the exact Retrain model's reference payload, Avg. Gap.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import metric_value
from unlearnbench.protocol import Protocol
from unlearnbench.registry import MODEL_LOADERS, PROTOCOLS
from unlearnbench.spec import TaskSpec

MODEL_LOADERS.register("classifier", "unlearnbench.classifier:load_classifier",
                       description="safetensors + classifier.json naming a registered architecture")


@dataclass(frozen=True)
class ClassifierData:
    """Train/test images (float32 ``(N, C, H, W)`` in [0, 1]) and integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str

    def sha256(self) -> str:
        """sha256 of all arrays and shapes (computed once per object)."""
        if "_sha256" not in self.__dict__:
            h = hashlib.sha256()
            for a in (self.x_train, self.y_train, self.x_test, self.y_test):
                h.update(np.ascontiguousarray(a).tobytes())
                h.update(str(a.shape).encode())
            object.__setattr__(self, "_sha256", h.hexdigest())
        return self.__dict__["_sha256"]


def _resolve(ref: str) -> Callable:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.lru_cache(maxsize=8)
def _load_data_cached(loader: str, source_json: str, local_override: str | None) -> ClassifierData:
    return _resolve(loader)(json.loads(source_json))


def task_data(task: TaskSpec) -> ClassifierData:
    """The task's images (loaded once per process per source and local-copy override)."""
    loader = task.settings.get("data")
    if not loader:
        raise UserError(f"task {task.name} names no data loader")
    env = task.source.get("env")
    return _load_data_cached(loader, json.dumps(dict(task.source), sort_keys=True), os.environ.get(env) if env else None)


# -- forget-set selection ---------------------------------------------------------------
def _random_forget(task: TaskSpec, data: ClassifierData, spec: dict) -> np.ndarray:
    n = len(data.y_train)
    k = int(round(float(spec["fraction"]) * n))
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    return np.sort(rng.permutation(n)[:k])


def _class_forget(task: TaskSpec, data: ClassifierData, spec: dict) -> np.ndarray:
    k = int(spec["class"])
    if not 0 <= k < data.num_classes:
        raise UserError(f"{task.name}: class {k} is out of range (the data has {data.num_classes} classes)")
    return np.flatnonzero(data.y_train == k)


def _worst_forget(task: TaskSpec, data: ClassifierData, spec: dict) -> np.ndarray:
    from unlearnbench.tasks.worst_case import worst_case_forget_set

    return worst_case_forget_set(data, spec, architecture=dict(task.settings["architecture"]),
                                 recipe=train_recipe(task), progress=True)


#: forget-set kinds (settings["forget"]["kind"]) -> selector(task, data, spec) -> sorted indices
FORGET_SELECTORS: dict[str, Callable[[TaskSpec, ClassifierData, dict], np.ndarray]] = {
    "random": _random_forget, "class": _class_forget, "worst": _worst_forget,
}


_FORGET_CACHE: dict[str, np.ndarray] = {}


def _forget_cached(task: TaskSpec) -> np.ndarray:
    key = task.spec_hash() + task_data(task).sha256()
    if key in _FORGET_CACHE:
        return _FORGET_CACHE[key]
    spec = dict(task.settings.get("forget") or {})
    kind = spec.get("kind")
    if kind not in FORGET_SELECTORS:
        raise UserError(f"task {task.name}: unknown forget-set kind {kind!r} (one of {', '.join(FORGET_SELECTORS)})")
    idx = np.asarray(FORGET_SELECTORS[kind](task, task_data(task), spec), dtype=np.int64)
    if idx.size == 0:
        raise UserError(f"task {task.name}: the forget set is empty")
    _FORGET_CACHE[key] = idx
    return idx


def forget_indices(task: TaskSpec) -> np.ndarray:
    """Sorted training-set indices of the forget set (deterministic; cached per process)."""
    return _forget_cached(task).copy()


def split_indices(task: TaskSpec) -> dict[str, np.ndarray]:
    """``{"forget", "retain"}`` index the training set, ``"test"`` the test set."""
    data = task_data(task)
    forget = forget_indices(task)
    mask = np.zeros(len(data.y_train), dtype=bool)
    mask[forget] = True
    test = np.arange(len(data.y_test))
    spec = task.settings.get("forget") or {}
    if spec.get("kind") == "class":  # SalUn class-wise: TA on the remaining classes
        test = test[data.y_test != int(spec["class"])]
    return {"forget": forget, "retain": np.flatnonzero(~mask), "test": test}


def split_arrays(task: TaskSpec) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """split -> (indices, images, labels)."""
    data, idx = task_data(task), split_indices(task)
    out = {}
    for split, ii in idx.items():
        x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
        out[split] = (ii, x[ii], y[ii])
    return out


def train_recipe(task: TaskSpec) -> dict:
    """The task's from-scratch training recipe at the current ``UNLEARNBENCH_SCALE``.

    ``settings["train"]`` is the default-scale recipe; ``settings["train_scales"][scale]``
    overrides some of its keys (fewer epochs for unit tests).
    """
    from unlearnbench.cache import scale

    recipe = dict(task.settings.get("train") or {})
    recipe.update((task.settings.get("train_scales") or {}).get(scale(), {}))
    return recipe


def forget_id(task: TaskSpec) -> dict:
    idx = forget_indices(task)
    return {"task": task.name, "version": task.version, "data_sha256": task_data(task).sha256(),
            "n_forget": int(idx.size), "indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest()}


# -- protocol ---------------------------------------------------------------------------
def _softmax_stats(logits, labels: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    # a diverged model (NaN / inf logits) scores as what it is — a broken classifier — not a crash
    logits = torch.nan_to_num(torch.as_tensor(logits, dtype=torch.float64), nan=0.0, posinf=1e4, neginf=-1e4)
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    y = torch.as_tensor(labels, dtype=torch.long)
    return {"pred": logits.argmax(-1).numpy(), "confidence": p.gather(1, y[:, None])[:, 0].numpy(),
            "entropy": (-(p * logp).nan_to_num(0.0).sum(-1)).numpy()}


def _acc_value(name: str, fn: Callable, flags: np.ndarray, higher: bool = True) -> dict:
    v = fn(flags)
    p = float(np.mean(flags))
    return metric_value(v, higher, len(flags), 100.0 * math.sqrt(p * (1 - p) / len(flags)) if len(flags) > 1 else None)


class ClassifierProtocol(Protocol):
    """Scores a classifier on forget / retain / test (SalUn's UA, RA, TA, MIA-Efficacy, RTE, Avg. Gap)."""

    modality = "classifier"

    def infer(self, task: TaskSpec, model: Any, *, progress: bool = True) -> list[dict]:
        rows: list[dict] = []
        for split, (ii, x, y) in split_arrays(task).items():
            logits = model.predict(x)
            if logits.ndim != 2 or logits.shape[0] != len(y):
                raise UserError(f"model returned logits of shape {tuple(logits.shape)} for {len(y)} images")
            if logits.shape[1] < task_data(task).num_classes:
                raise UserError(f"model has {logits.shape[1]} outputs but {task.name} has {task_data(task).num_classes} classes")
            st = _softmax_stats(logits, y)
            for j in range(len(y)):
                rows.append({"split": split, "index": int(ii[j]), "label": int(y[j]), "pred": int(st["pred"][j]),
                             "correct": int(st["pred"][j] == y[j]), "confidence": float(st["confidence"][j]),
                             "entropy": float(st["entropy"][j])})
        seconds = (getattr(model, "meta", None) or {}).get("unlearn_seconds")
        if seconds is not None:
            rows.append({"split": "run", "index": 0, "unlearn_seconds": float(seconds)})
        return rows

    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        from unlearnbench.metrics import classification as C

        by: dict[str, list[dict]] = {}
        for r in rows:
            by.setdefault(r["split"], []).append(r)
        for split in ("forget", "retain", "test"):
            if not by.get(split):
                raise UserError(f"{task.name}: no per-sample rows for split {split!r}")

        def col(split: str, key: str) -> np.ndarray:
            return np.asarray([r[key] for r in by[split]], dtype=np.float64)

        out = {"ua": _acc_value("ua", C.ua, col("forget", "correct")),
               "ra": _acc_value("ra", C.ra, col("retain", "correct")),
               "ta": _acc_value("ta", C.ta, col("test", "correct"))}
        out["mia_efficacy"] = metric_value(
            C.mia_efficacy(col("retain", "confidence"), col("test", "confidence"), col("forget", "confidence")),
            True, len(by["forget"]))
        if by.get("run"):
            out["rte"] = metric_value(C.rte(by["run"][0]["unlearn_seconds"]), False, 1)
        ref = (reference or {}).get("metrics")
        if ref:
            mine = {k: out[k]["value"] for k in C.GAP_METRICS}
            out["avg_gap"] = metric_value(C.avg_gap(mine, ref), False, len(C.GAP_METRICS),
                                          retrain={k: ref[k] for k in C.GAP_METRICS})
        return out

    def reference_payload(self, task: TaskSpec, rows: list[dict]) -> dict:
        """Retrain's headline values (for Avg. Gap) and its per-sample forget-set statistics."""
        from unlearnbench.metrics.classification import GAP_METRICS

        agg = self.aggregate(task, rows, None)
        return {"metrics": {k: agg[k]["value"] for k in GAP_METRICS},
                "rows": [r for r in rows if r["split"] == "forget"]}

    def training_data(self, task: TaskSpec) -> dict:
        """Forget / retain tensors for methods, plus what Retrain needs (recipe, classes)."""
        import torch

        arrays = split_arrays(task)
        data = task_data(task)
        pack = {s: {"x": torch.as_tensor(arrays[s][1]), "y": torch.as_tensor(arrays[s][2], dtype=torch.long)}
                for s in ("forget", "retain")}
        return {**pack, "num_classes": data.num_classes, "train_recipe": train_recipe(task),
                "architecture": dict(task.settings.get("architecture") or {}),
                "forget_id": forget_id(task)}

    def data_hash(self, task: TaskSpec) -> str | None:
        from unlearnbench.results import canonical_json_hash

        return canonical_json_hash(forget_id(task))


PROTOCOLS.register("classifier", ClassifierProtocol, modality="classifier",
                   description="UA, RA, TA, MIA-Efficacy, RTE, Avg. Gap (SalUn)")
