"""How metrics are registered and how a metric's headline number is stored.

A metric is a pure function over arrays of per-sample values (never a model). It is
registered with its name, whether higher is better, the modalities it applies to and the
per-sample quantities it consumes, so listings and the leaderboard know it without
importing heavy code. Aggregation results are stored as :func:`metric_value` dicts, the
``metrics`` entries of a result v1 file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from unlearnbench.registry import METRICS


@dataclass(frozen=True)
class MetricInfo:
    name: str
    fn: Callable
    higher_is_better: bool
    modalities: tuple[str, ...]
    consumes: tuple[str, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


def register_metric(
    name: str,
    *,
    higher_is_better: bool,
    modalities: Sequence[str],
    consumes: Sequence[str] = (),
    description: str = "",
):
    """Decorator: register a pure metric function under ``name``."""

    def deco(fn: Callable) -> Callable:
        desc = description or (fn.__doc__ or "").strip().splitlines()[0]
        info = MetricInfo(name, fn, higher_is_better, tuple(modalities), tuple(consumes), desc)
        METRICS.register(
            name,
            info,
            modality=",".join(info.modalities),
            higher_is_better=higher_is_better,
            consumes=list(info.consumes),
            description=desc,
        )
        return fn

    return deco


def metric_value(value: float, higher_is_better: bool, n: int, stderr: float | None = None, **extra) -> dict:
    """The stored form of one headline number: ``{value, higher_is_better, n, stderr}``.

    Non-finite values are stored as ``None`` (JSON has no NaN) with the reason in ``note``.
    """
    v = float(value)
    out = {"value": v if math.isfinite(v) else None, "higher_is_better": bool(higher_is_better), "n": int(n)}
    out["stderr"] = None if stderr is None or not math.isfinite(float(stderr)) else float(stderr)
    if not math.isfinite(v):
        out["note"] = f"non-finite value ({v})"
    out.update(extra)
    return out


def mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (ddof=1); stderr is None for fewer than 2 values."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), None
    if arr.size < 2:
        return float(arr.mean()), None
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size))
