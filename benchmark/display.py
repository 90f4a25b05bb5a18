"""Readable output: listings and result tables in the terminal (rich), and how table numbers are written.

:func:`fmt_number` and :func:`fmt_stat` are the one place that decides how a number appears in
a table (terminal, Markdown, LaTeX, HTML): three decimals (two from 10, one from 1000),
scientific notation below 0.01 and from 10,000, an exact zero as ``0``; a summary over seeds
as ``mean ± std``, without a spread when the seeds agree (deterministic rows), and a spread
that rounds to nothing as ``± 0`` (never ``± 1.70e-17``).
"""

from __future__ import annotations

import math
from typing import Iterable

from rich.console import Console
from rich.table import Table


def fmt_number(v: float | None) -> str:
    """A table number (see the module docstring); ``—`` when missing or not finite."""
    if v is None or not math.isfinite(float(v)):
        return "—"
    v = float(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-2 or a >= 1e4:
        return f"{v:.2e}"
    return f"{v:.{1 if a >= 1000 else 2 if a >= 10 else 3}f}"


def fmt_spread(std: float | None, mean: float | None = None) -> str:
    """A standard deviation beside its mean, to the mean's decimals; ``0`` when it is zero at the
    mean's precision (rounding noise such as 1.7e-17 included)."""
    if std is None:
        return ""
    text = fmt_number(mean) if mean is not None else ""
    if std == 0 or (mean not in (None, 0) and abs(std) < 1e-9 * abs(mean)):
        return "0"
    if "e" in text or "." not in text or abs(std) >= 1e4:
        return fmt_number(std)
    digits = len(text.split(".")[1])
    return f"{std:.{digits}f}" if round(std, digits) != 0 else f"<{10 ** -digits:.{digits}f}"


def fmt_stat(mean: float | None, std: float | None = None, deterministic: bool = False, plus_minus: str = " ± ") -> str:
    """``mean ± std``; the mean alone for one seed or a deterministic row."""
    if mean is None:
        return "—"
    if std is None or deterministic:
        return fmt_number(mean)
    return f"{fmt_number(mean)}{plus_minus}{fmt_spread(std, mean)}"


def _console() -> Console:
    return Console(soft_wrap=False)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    return str(v)


def print_listing(title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    cols = ["name"] + sorted({k for r in rows for k in r if k != "name" and k != "description"}) + ["description"]
    cols = [c for c in cols if any(c in r for r in rows)]
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[_fmt(r.get(c, "")) if not isinstance(r.get(c), (list, tuple)) else ",".join(map(str, r.get(c)))
                        for c in cols])
    _console().print(table)


def print_result(result: dict) -> None:
    t = result["task"]
    title = f"{t['name']} (v{t['version']}) — {result.get('label', '')}"
    table = Table(title=title)
    for c in ("metric", "value", "stderr", "n", "better"):
        table.add_column(c, justify="right" if c != "metric" else "left")
    from unlearnbench.metric import judgement

    for name, m in result["metrics"].items():
        judged = judgement(name, modality=t.get("modality"), task=t["name"],
                           stored_higher_is_better=m.get("higher_is_better"))
        table.add_row(name, _fmt(m.get("value")), _fmt(m.get("stderr")), str(m.get("n")), judged.symbol())
    _console().print(table)


def print_comparison(title: str, columns: Iterable[str], rows: list[dict]) -> None:
    """rows: {"label": ..., column: value}."""
    columns = list(columns)
    table = Table(title=title)
    table.add_column("model")
    for c in columns:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(str(r["label"]), *[_fmt(r.get(c)) for c in columns])
    _console().print(table)


def print_profiles(profiles) -> None:
    """Scoring profiles (``--profile``): what they apply to and every setting they imply."""
    import json

    table = Table(title="scoring profiles (--profile)")
    for c in ("profile", "applies to", "settings", "description"):
        table.add_column(c, overflow="fold")
    for p in profiles:
        table.add_row(p.name, ",".join(p.protocols), json.dumps(dict(p.settings)) if p.settings else "(task defaults)",
                      p.description + (f" [{p.source}]" if p.source else ""))
    _console().print(table)
