"""Every registered metric as a Hugging Face ``evaluate`` module, loadable offline.

``evaluate.load(name)`` fetches a script from the hub; ``evaluate.load(folder)`` runs a local
script instead. :func:`module_dir` writes, for one metric, the folder ``<root>/<metric>/`` with
a three-line script ``<metric>.py`` whose class is :class:`UnlearnbenchMetric` bound to that
metric, so that ::

    import evaluate, unlearnbench.hf_evaluate as ub
    ua = evaluate.load(str(ub.module_dir("ua")))          # or ub.load("ua")
    ua.compute(forget_correct=[1, 0, 0, 1])               # {'ua': 50.0}
    ua.add_batch(forget_correct=[1, 1]); ua.compute()     # streaming, as every evaluate module

works without a network (``unlearnbench evaluate-modules DIR`` writes them all). The
inputs are the metric's per-sample quantities, declared once in ``metric_judgements.yaml``
(``evaluate: {input: type}``); the computation is the registered metric function itself:

* plain columns are passed as the function's arguments of the same names (one row per sample;
  a function taking a number gets the single row's value: ``rte``, ``privleak``);
* a ``set`` column splits the rows into the function's sets: integer sets in argument order
  (``mia_loss``: set 0 = forget scores, 1 = holdout scores; ``forget_quality``: 0 = the model's
  truth ratios, 1 = the retain model's), named sets feed ``<set>_<column>`` (``mia_efficacy``:
  ``forget`` / ``retain`` / ``test`` confidences);
* a ``metric`` column turns the other columns into mappings (``avg_gap``).

Results are ``{metric: value}``; functions returning per-sample values (``probability``,
``truth_ratio``, ``rouge_l_recall``) give their mean with the values under ``per_sample``, and
``forget_quality`` adds its KS ``statistic``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np

from unlearnbench.errors import UserError

SCRIPT = '''"""unlearnbench metric {name!r} as a Hugging Face `evaluate` module (written by unlearnbench.hf_evaluate)."""
import unlearnbench.hf_evaluate as _unlearnbench


class {cls}(_unlearnbench.UnlearnbenchMetric):
    metric_name = {name!r}
'''


def evaluate_inputs(name: str) -> dict[str, Any]:
    """The declared per-sample inputs of metric ``name`` (``metric_judgements.yaml``)."""
    from unlearnbench.metric import declaration

    inputs = (declaration(name) or {}).get("evaluate")
    if not inputs:
        raise UserError(f"metric {name!r} declares no `evaluate` inputs (add them to its line in "
                        "benchmark/metric_judgements.yaml)")
    return dict(inputs)


def _feature(t: Any):
    import datasets

    if isinstance(t, list):
        return datasets.List(_feature(t[0]))
    if isinstance(t, dict):
        return {k: _feature(v) for k, v in t.items()}
    return datasets.Value(str(t))


def _metric_fn(name: str):
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import METRICS

    load_all()
    info = METRICS.get(name)
    return getattr(info, "fn", info)


def _scalar_param(p: inspect.Parameter) -> bool:
    ann = str(p.annotation)
    return ann in ("float", "int", "<class 'float'>", "<class 'int'>")


def compute_metric(name: str, columns: dict[str, list]) -> dict:
    """Call the registered metric ``name`` on evaluate-style ``columns`` (see the module docstring)."""
    fn = _metric_fn(name)
    params = inspect.signature(fn).parameters
    cols = {k: list(v) for k, v in columns.items()}
    args: list = []
    kwargs: dict[str, Any] = {}
    if "set" in cols:
        sets = cols.pop("set")
        order = sorted(set(sets))
        for col, values in cols.items():
            for s in order:
                part = [v for v, g in zip(values, sets) if g == s]
                if isinstance(s, str):
                    kwargs[f"{s}_{col}"] = part
                else:
                    args.append(part)
    elif "metric" in cols:
        keys = cols.pop("metric")
        kwargs = {col: dict(zip(keys, values)) for col, values in cols.items()}
    else:
        for col, values in cols.items():
            p = params.get(col)
            kwargs[col] = values[0] if p is not None and _scalar_param(p) and len(values) == 1 else values
    out = fn(*args, **kwargs)
    if isinstance(out, tuple):
        return {name: float(out[0]), "statistic": float(out[1])}
    if isinstance(out, np.ndarray):
        return {name: float(np.mean(out)), "per_sample": out.astype(float).tolist()}
    return {name: float(out)}


try:
    import evaluate as _evaluate
except ImportError:  # evaluate is an optional dependency ([llm] extra)
    _evaluate = None

if _evaluate is not None:
    class UnlearnbenchMetric(_evaluate.Metric):
        """An unlearnbench metric behind evaluate's interface; subclasses set ``metric_name``."""

        metric_name = ""

        def _info(self):
            import datasets

            from unlearnbench.leaderboard.cards import metric_card
            from unlearnbench.metric import judgement

            inputs = evaluate_inputs(self.metric_name)
            card = metric_card(self.metric_name)
            return _evaluate.MetricInfo(
                description=card.split("\n\n")[0], citation=card, module_type="metric",
                inputs_description=(f"Per-sample inputs {', '.join(f'{k} ({v})' for k, v in inputs.items())}; "
                                    f"{judgement(self.metric_name).words()}."),
                features=datasets.Features({k: _feature(v) for k, v in inputs.items()}))

        def _compute(self, **columns):
            return compute_metric(self.metric_name, columns)
else:
    UnlearnbenchMetric = None


def module_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Write (if needed) and return the folder of metric ``name``'s evaluate module."""
    from unlearnbench.cache import cache_dir

    evaluate_inputs(name)  # a clear error for a metric without declared inputs
    folder = Path(root) if root is not None else cache_dir("evaluate")
    slug = name.replace("/", "-")
    path = folder / slug / f"{slug}.py"
    cls = "".join(part.capitalize() for part in slug.replace("-", "_").split("_")) or "Metric"
    text = SCRIPT.format(name=name, cls=cls)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        from unlearnbench.results import atomic_write_text

        atomic_write_text(path, text)
    return path.parent


def load(name: str, **kwargs):
    """``evaluate.load`` of metric ``name``'s local module (offline)."""
    if _evaluate is None:
        raise UserError("Hugging Face `evaluate` is not installed (pip install evaluate)")
    return _evaluate.load(str(module_dir(name)), **kwargs)


def export(root: str | os.PathLike) -> list[Path]:
    """Write every registered metric's module folder under ``root``; return the folders."""
    from unlearnbench.catalog import load_all
    from unlearnbench.metric import declaration
    from unlearnbench.registry import METRICS

    load_all()
    return [module_dir(n, root) for n in METRICS.names() if (declaration(n) or {}).get("evaluate")]
