"""Tables as data, rendered to Markdown / LaTeX / CSV by pure functions (as HELM's presentation layer).

A :class:`Table` holds text columns (rank, label, ...) and metric columns whose cells are
``mean ± std`` over seeds; the best mean of each metric column (by its direction) is bold in
Markdown and LaTeX. Both ``leaderboard render`` and ``unlearnbench table`` use these.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class Cell:
    mean: float | None
    std: float | None = None
    n: int = 0
    ci95: tuple[float, float] | None = None


@dataclass
class Table:
    title: str
    text_headers: list[str]
    columns: list[Column]
    rows: list[tuple[list[str], dict[str, Cell]]] = field(default_factory=list)
    note: str = ""

    def best(self) -> dict[str, float]:
        """Best mean per metric column (absent when no row has a value)."""
        out = {}
        for c in self.columns:
            vals = [cells[c.key].mean for _, cells in self.rows if c.key in cells and cells[c.key].mean is not None]
            if vals:
                out[c.key] = max(vals) if c.higher_is_better else min(vals)
        return out


def fmt_number(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4):
        return f"{v:.2e}"
    return f"{v:.3f}"


def fmt_cell(cell: Cell | None, plus_minus: str = " ± ") -> str:
    if cell is None or cell.mean is None:
        return "—"
    if cell.std is None:
        return fmt_number(cell.mean)
    return f"{fmt_number(cell.mean)}{plus_minus}{fmt_number(cell.std)}"


def arrow(c: Column) -> str:
    return "↑" if c.higher_is_better else "↓"


# -- Markdown -----------------------------------------------------------------------------------
def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    best = table.best()
    head = table.text_headers + [f"{c.header} {arrow(c)}" for c in table.columns]
    lines = [f"### {_md_escape(table.title)}", "", "| " + " | ".join(map(_md_escape, head)) + " |",
             "|" + "|".join([" --- "] * len(table.text_headers) + [" ---: "] * len(table.columns)) + "|"]
    for texts, cells in table.rows:
        vals = []
        for c in table.columns:
            s = _md_escape(fmt_cell(cells.get(c.key)))
            cell = cells.get(c.key)
            if cell is not None and cell.mean is not None and best.get(c.key) == cell.mean:
                s = f"**{s}**"
            vals.append(s)
        lines.append("| " + " | ".join([_md_escape(t) for t in texts] + vals) + " |")
    if table.note:
        lines += ["", _md_escape(table.note)]
    return "\n".join(lines) + "\n"


# -- LaTeX --------------------------------------------------------------------------------------
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
          "—": "--", "±": r"$\pm$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(s))


def to_latex(table: Table) -> str:
    """A ``booktabs`` table (needs ``\\usepackage{booktabs}``); best value per column in bold."""
    best = table.best()
    spec = "l" * len(table.text_headers) + "r" * len(table.columns)
    head = [latex_escape(h) for h in table.text_headers] + [latex_escape(f"{c.header} {arrow(c)}") for c in table.columns]
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{latex_escape(table.title)}}}",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for texts, cells in table.rows:
        vals = []
        for c in table.columns:
            cell = cells.get(c.key)
            s = latex_escape(fmt_cell(cell))
            if cell is not None and cell.mean is not None and best.get(c.key) == cell.mean:
                s = f"\\textbf{{{s}}}"
            vals.append(s)
        lines.append(" & ".join([latex_escape(t) for t in texts] + vals) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# -- CSV ----------------------------------------------------------------------------------------
def _num(v) -> str:
    return "" if v is None else repr(float(v))


def to_csv(table: Table) -> str:
    """Wide CSV: the text columns, then ``<column> mean``, ``<column> std``, ``<column> n`` (full precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.text_headers + [f"{c.header} {k}" for c in table.columns for k in ("mean", "std", "n")])
    for texts, cells in table.rows:
        vals = []
        for c in table.columns:
            cell = cells.get(c.key)
            vals += [_num(cell.mean), _num(cell.std), str(cell.n)] if cell else ["", "", "0"]
        w.writerow(list(texts) + vals)
    return buf.getvalue()


# -- leaderboards -------------------------------------------------------------------------------
def headline_metrics(task: dict) -> list[dict]:
    """The metric columns a rendered table shows: the task's declared ones (all, for older files)."""
    shown = [m for m in task["metrics"] if m.get("headline", True)]
    return shown or list(task["metrics"])


def leaderboard_tables(board: dict) -> list[Table]:
    tables = []
    for t in board["tasks"]:
        cols = [Column(m["name"], m["name"], m["higher_is_better"]) for m in headline_metrics(t)]
        rb = t["rank_by"]
        table = Table(f"{t['name']} (v{t['version']})", ["rank", "label", "method", "seeds"], cols,
                      note=f"Ranked by {rb['metric']} ({'higher' if rb['higher_is_better'] else 'lower'} is better); "
                           "mean ± std over seeds.")
        for e in t["entries"]:
            texts = ["—" if e["rank"] is None else str(e["rank"]), e["label"], e["method"] or "—", str(len(e["seeds"]))]
            cells = {k: Cell(s["mean"], s["std"], s["n_seeds"], tuple(s["ci95"]) if s["ci95"] else None)
                     for k, s in e["metrics"].items()}
            table.rows.append((texts, cells))
        tables.append(table)
    return tables


def leaderboard_csv(board: dict) -> str:
    """Long CSV: one line per (task, entry, metric) with mean, std, 95% CI and per-seed count."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "task_version", "rank", "label", "method", "model", "seeds", "metric", "higher_is_better",
                "mean", "std", "ci95_low", "ci95_high", "n_seeds"])
    for t in board["tasks"]:
        for e in t["entries"]:
            for m, s in e["metrics"].items():
                lo, hi = s["ci95"] or (None, None)
                w.writerow([t["name"], t["version"], "" if e["rank"] is None else e["rank"], e["label"],
                            e["method"] or "", e["model"] or "", " ".join(map(str, e["seeds"])), m,
                            str(s["higher_is_better"]).lower(), _num(s["mean"]), _num(s["std"]), _num(lo), _num(hi),
                            s["n_seeds"]])
    return buf.getvalue()


def render_leaderboard(board: dict, fmt: str) -> str:
    if fmt == "csv":
        return leaderboard_csv(board)
    if fmt == "html":
        from unlearnbench.leaderboard.html import render_html

        return render_html(board)
    tables = leaderboard_tables(board)
    title = board.get("title")
    if fmt == "md":
        head = f"# {_md_escape(title)}\n\n" if title else ""
        return head + "\n".join(to_markdown(t) for t in tables)
    if fmt == "latex":
        return "\n".join(to_latex(t) for t in tables)
    from unlearnbench.errors import UserError

    raise UserError(f"unknown format {fmt!r}; use md, latex, csv or html")
