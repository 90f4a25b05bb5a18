"""Tables as data: a pandas DataFrame of numbers plus what each row and column means (HELM-style).

A :class:`TableModel` is what every renderer (``render.py``: Markdown, LaTeX, CSV, HTML) reads;
it never renders anything itself. Its ``data`` is a DataFrame with one row per table row and
MultiIndex columns ``(column key, stat)``, stat in :data:`STATS`, holding the *shown* quantity of
each metric column: the value, or for metrics judged by their gap to the reference model the
gap ``|value - reference|`` (``value_mean`` keeps the metric's own mean; ``judged`` is what the
column is judged by: the mean, or the mean distance to the reference / target). ``text`` holds the
text columns (rank, label, method, seeds). Rows carry their role (``ranked`` / ``target`` /
``reference``), model card and result files; cells their per-seed values with file links.

Two builders: :func:`from_section` (a leaderboard section) and :func:`from_rows` (any list of
rows with board-style metric summaries, e.g. ``unlearnbench table``'s paper tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TEXT_COLUMNS = (("rank", "rank"), ("label", "label"), ("method", "method"), ("seeds", "seeds"))
STATS = ("mean", "std", "low", "high", "n_seeds", "deterministic", "value_mean", "judged")


@dataclass(frozen=True)
class Column:
    """One metric column."""

    key: str                          # unique key (``metric`` or ``task\0metric``)
    header: str                       # shown header
    metric: str                       # metric name
    better: str = "higher"            # higher | lower | reference | target
    target: float | None = None
    low: float | None = None          # range of the metric
    high: float | None = None
    shown_as: str = "value"           # value | gap
    reference_value: float | None = None
    card: str = ""

    @property
    def smaller_is_better(self) -> bool:
        """For the shown quantity: True for lower, gap and target (distance) columns."""
        return self.better != "higher"

    def shown_range(self) -> tuple[float | None, float | None]:
        if self.shown_as == "gap":
            return 0.0, (None if self.low is None or self.high is None else self.high - self.low)
        return self.low, self.high

    def symbol(self) -> str:
        return {"higher": "↑", "lower": "↓", "reference": "Δ↓" if self.shown_as == "gap" else "",
                "target": f"→{self.target:g}" if self.target is not None else ""}[self.better]


@dataclass
class RowInfo:
    label: str
    role: str = "ranked"              # ranked | target | reference
    rank: int | None = None
    method: str | None = None
    seeds: list[int] = field(default_factory=list)
    card: dict | None = None
    results: list[dict] = field(default_factory=list)   # provenance with files (cards.provenance)
    anchor: str = ""                  # id of the row's model card on a page


@dataclass
class TableModel:
    title: str
    columns: list[Column]
    rows: list[RowInfo]
    text: pd.DataFrame                # text columns, one row per table row
    data: pd.DataFrame                # (column key, stat) -> number
    seeds: dict = field(default_factory=dict)   # (row position, column key) -> [{seed, value, samples, result}]
    note: str = ""
    ranked: bool = True               # False for paper tables: no rank column

    def cell(self, i: int, key: str) -> dict | None:
        """The stats of row ``i`` in column ``key`` (None when missing)."""
        if (key, "mean") not in self.data.columns:
            return None
        s = {stat: self.data.iloc[i][(key, stat)] for stat in STATS}
        if s["n_seeds"] == 0 or pd.isna(s["mean"]):
            return None
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in s.items()}

    def best(self) -> dict[str, float]:
        """Column key -> best judged key among the ranked rows (reference rows never win)."""
        out = {}
        for c in self.columns:
            keys = []
            for i, r in enumerate(self.rows):
                cell = self.cell(i, c.key)
                if r.role == "ranked" and cell is not None:
                    keys.append(cell["judged"])
            keys = [k for k in keys if k is not None]
            if keys:
                out[c.key] = max(keys) if not c.smaller_is_better else min(keys)
        return out

    def is_best(self, i: int, key: str, best: dict[str, float]) -> bool:
        cell = self.cell(i, key)
        if cell is None or cell["judged"] is None or self.rows[i].role != "ranked" or key not in best:
            return False
        return bool(np.isclose(cell["judged"], best[key], rtol=1e-12, atol=0))


def _stats_row(stat: dict | None, column: Column) -> dict:
    """The shown quantity's stats from a board metric summary (``distance`` for gap columns)."""
    if stat is None:
        return {s: np.nan for s in STATS} | {"n_seeds": 0, "deterministic": False}
    shown = stat.get("distance") if column.shown_as == "gap" and stat.get("distance") else stat
    ci = shown.get("ci95") or [None, None]
    judged = stat["distance"]["mean"] if stat.get("distance") else (stat["mean"] if column.better in ("higher", "lower")
                                                                      else None)
    return {"mean": shown["mean"], "std": shown["std"], "low": ci[0], "high": ci[1], "n_seeds": shown["n_seeds"],
            "deterministic": bool(shown.get("deterministic")), "value_mean": stat["mean"], "judged": judged}


def _seed_links(stat: dict | None, column: Column, results: list[dict]) -> list[dict]:
    if stat is None:
        return []
    shown = stat.get("distance") if column.shown_as == "gap" and stat.get("distance") else stat
    out = []
    for v, r in zip(shown["values"], stat.get("results") or results):
        files = r.get("files") or {}
        out.append({"seed": r["seed"], "value": v, "samples": files.get("samples"), "result": files.get("result")})
    return out


def from_rows(title: str, columns: list[Column], rows: list[RowInfo], stats: list[dict[str, dict]], *,
              note: str = "", ranked: bool = True, text_columns: tuple[tuple[str, str], ...] = TEXT_COLUMNS
              ) -> TableModel:
    """A table from rows and their board-style metric summaries (``stats[i][column key]``);
    ``text_columns`` are (header, field) pairs, field in rank, label, method, seeds."""
    records, text, seeds = [], [], {}
    for i, (row, st) in enumerate(zip(rows, stats)):
        rec = {}
        for c in columns:
            for k, v in _stats_row(st.get(c.key), c).items():
                rec[(c.key, k)] = np.nan if v is None else v
            seeds[(i, c.key)] = _seed_links(st.get(c.key), c, row.results)
        records.append(rec)
        rank = "ref" if row.role != "ranked" else ("—" if row.rank is None else str(row.rank))
        full = {"rank": rank, "label": row.label, "method": row.method or "—", "seeds": str(len(row.seeds))}
        text.append({h: full[k] for h, k in text_columns})
    index = pd.MultiIndex.from_tuples([(c.key, s) for c in columns for s in STATS], names=["column", "stat"])
    data = pd.DataFrame.from_records(records, columns=index) if records else pd.DataFrame(columns=index)
    return TableModel(title, columns, rows, pd.DataFrame(text, columns=[h for h, _ in text_columns]), data, seeds, note,
                      ranked)


def section_columns(section: dict, headline_only: bool = True, prefix: str = "") -> list[Column]:
    """The metric columns of a leaderboard section (its headline metrics unless ``headline_only=False``)."""
    shown = [m for m in section["metrics"] if m.get("headline", True) or not headline_only] or section["metrics"]
    cols = []
    for m in shown:
        rng = m.get("range") or [None, None]
        better = m.get("better") or ("higher" if m["higher_is_better"] else "lower")
        cols.append(Column(f"{prefix}{m['name']}", (f"{prefix.rstrip(chr(0))}: " if prefix else "") + m["name"],
                           m["name"], better, m.get("target"), rng[0], rng[1], m.get("shown_as", "value"),
                           m.get("reference_value"), m.get("card", "")))
    return cols


def from_section(section: dict, *, headline_only: bool = True, anchor_prefix: str = "") -> TableModel:
    """The table of one leaderboard section."""
    columns = section_columns(section, headline_only)
    rows = [RowInfo(e["label"], e.get("role", "ranked"), e["rank"], e["method"], list(e["seeds"]), e.get("card"),
                    e["results"], f"{anchor_prefix}entry-{i}") for i, e in enumerate(section["entries"])]
    title = f"{section['name']} (v{section['version']})" + (f" [{section['variant']}]" if section.get("variant") else "")
    rb = section["rank_by"]
    note = (f"Ranked by {rb['metric']} ({_words(rb.get('better'), rb['higher_is_better'])}); mean ± std over seeds; "
            "target and reference rows are shown, not ranked.")
    return from_rows(title, columns, rows, [e["metrics"] for e in section["entries"]], note=note)


def _words(better: str | None, hib: bool) -> str:
    return {"reference": "smallest gap to the reference model", "target": "closest to the target",
            "higher": "higher is better", "lower": "lower is better"}.get(better or "", "higher is better" if hib else
                                                                             "lower is better")
