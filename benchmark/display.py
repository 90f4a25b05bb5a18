"""Readable terminal output: listings and result tables (rich)."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.table import Table


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
    for name, m in result["metrics"].items():
        table.add_row(name, _fmt(m.get("value")), _fmt(m.get("stderr")), str(m.get("n")),
                      "↑" if m.get("higher_is_better") else "↓")
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
