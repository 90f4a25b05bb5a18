"""How metrics are registered and how a metric's headline number is stored.

A metric is a pure function over arrays of per-sample values (never a model). It is
registered with its name, whether higher is better, the modalities it applies to and the
per-sample quantities it consumes, so listings and the leaderboard know it without
importing heavy code. Aggregation results are stored as :func:`metric_value` dicts, the
``metrics`` entries of a result v1 file.

How a metric is *judged* in tables (higher, lower, closest to the reference model, closest to
a value) and the range of its values are data: one line per metric in
``metric_judgements.yaml`` beside this module (or :func:`declare_metric` in code), read by
:func:`judgement`. Judging is presentation, not scoring, so it is not part of any task's
spec hash: re-declaring a metric never invalidates a result.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

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


# -- how a metric is judged ------------------------------------------------------------------
#: the ways a metric can be judged (see metric_judgements.yaml)
BETTER = ("higher", "lower", "reference", "target")
_JUDGEMENT_FILE = Path(__file__).resolve().parent / "metric_judgements.yaml"
_DECLARED: dict[str, dict] = {}  # declare_metric() additions (tests, plug-ins); override the file


@dataclass(frozen=True)
class Judgement:
    """How a metric is judged and the range its values can take.

    ``better`` is ``higher``, ``lower``, ``reference`` (closest to the task's reference model,
    shown as ``|value - reference|``) or ``target`` (closest to ``target``). ``low`` / ``high``
    bound the values (None = unbounded). ``source`` says where the judgement came from:
    ``declared`` (metric_judgements.yaml or :func:`declare_metric`), ``stored`` (the direction a
    result stored for an undeclared metric) or ``default``.
    """

    metric: str
    better: str
    low: float | None = None
    high: float | None = None
    target: float | None = None
    source: str = "declared"

    @property
    def is_distance(self) -> bool:
        """Judged by a distance (to the reference model or a target value): smaller is better."""
        return self.better in ("reference", "target")

    @property
    def higher_is_better(self) -> bool:
        """Direction of the judged quantity: the value itself, or its distance (lower is better)."""
        return self.better == "higher"

    def distance(self, value: float | None, reference: float | None = None) -> float | None:
        """``|value - reference|`` (``reference``) or ``|value - target|`` (``target``); None when undefined."""
        anchor = self.target if self.better == "target" else reference
        if value is None or anchor is None or not self.is_distance:
            return None
        return abs(float(value) - float(anchor))

    def symbol(self) -> str:
        if self.better == "target":
            return f"→{self.target:g}"
        return {"higher": "↑", "lower": "↓", "reference": "Δ↓"}[self.better]

    def words(self) -> str:
        if self.better == "target":
            return f"closest to {self.target:g} is better"
        return {"higher": "higher is better", "lower": "lower is better",
                "reference": "closest to the reference model is better (shown as the gap |value - reference|)"}[self.better]

    def bounds(self) -> tuple[float | None, float | None]:
        """Range of the *shown* quantity: the metric's range, or [0, span] for a gap."""
        if self.better == "reference":
            span = None if self.low is None or self.high is None else self.high - self.low
            return 0.0, span
        return self.low, self.high

    def to_dict(self) -> dict:
        return {"better": self.better, "range": [self.low, self.high], "target": self.target, "source": self.source}


@functools.lru_cache(maxsize=1)
def _file_declarations() -> dict[str, dict]:
    import yaml

    doc = yaml.safe_load(_JUDGEMENT_FILE.read_text(encoding="utf-8")) or {}
    for name, d in doc.items():
        _check_declaration(name, d, str(_JUDGEMENT_FILE))
    return doc


def _check_declaration(name: str, d: dict, where: str) -> None:
    if not isinstance(d, dict) or d.get("better") not in BETTER:
        raise ValueError(f"{where}: {name}: `better` must be one of {', '.join(BETTER)}")
    unknown = set(d) - {"better", "range", "target", "better_for", "evaluate"}
    if unknown:
        raise ValueError(f"{where}: {name}: unknown key(s) {', '.join(sorted(unknown))}")
    if (d["better"] == "target") != (d.get("target") is not None):
        raise ValueError(f"{where}: {name}: `target` goes with (and only with) better: target")
    for b in (d.get("better_for") or {}).values():
        if b not in BETTER or b == "target":
            raise ValueError(f"{where}: {name}: better_for values must be higher, lower or reference")
    rng = d.get("range", [None, None])
    if not (isinstance(rng, list) and len(rng) == 2):
        raise ValueError(f"{where}: {name}: `range` must be [low, high] (null for unbounded)")


def declare_metric(name: str, *, better: str, range: tuple = (None, None), target: float | None = None,
                   better_for: Mapping[str, str] | None = None, evaluate: Mapping[str, Any] | None = None) -> None:
    """Declare (or re-declare) how ``name`` is judged, in code: the same keys as metric_judgements.yaml."""
    d = {"better": better, "range": list(range), "target": target, "better_for": dict(better_for or {}),
         "evaluate": dict(evaluate or {})}
    _check_declaration(name, d, "declare_metric")
    _DECLARED[name] = d


def declaration(name: str) -> dict | None:
    """The raw declaration of ``name`` (code before file), or None."""
    return _DECLARED.get(name) or _file_declarations().get(name)


def judgement(name: str, *, modality: str | None = None, task: str | None = None,
              stored_higher_is_better: bool | None = None) -> Judgement:
    """How metric ``name`` (a registered name or a ``<split>/<metric>`` result key) is judged.

    Order: the declaration of ``name``; else that of its base metric, with the direction the
    protocol stored for the split when the base is judged higher/lower; else the stored
    direction; else the registered ``higher_is_better``; else higher.
    """
    d, split_variant = declaration(name), False
    if d is None and "/" in name:
        d, split_variant = declaration(name.rsplit("/", 1)[-1]), True
    if d is None:
        hib = stored_higher_is_better
        source = "stored"
        if hib is None and name in METRICS:
            hib, source = METRICS.meta(name).get("higher_is_better"), "registered"
        if hib is None:
            hib, source = True, "default"
        return Judgement(name, "higher" if hib else "lower", source=source)
    better = d["better"]
    for key, b in (d.get("better_for") or {}).items():
        if key == modality or (task is not None and fnmatch.fnmatchcase(task, key)):
            better = b
            break
    if split_variant and better in ("higher", "lower") and stored_higher_is_better is not None:
        better = "higher" if stored_higher_is_better else "lower"
    low, high = (list(d.get("range") or [None, None]) + [None, None])[:2]
    return Judgement(name, better, None if low is None else float(low), None if high is None else float(high),
                     None if d.get("target") is None else float(d["target"]))
