"""Render a :class:`~unlearnbench.leaderboard.table_model.TableModel` with pandas: Markdown, LaTeX, CSV, HTML.

Pure functions of the table model (they never read files or registries): Markdown is
``DataFrame.to_markdown`` (tabulate), LaTeX a booktabs table from ``Styler.to_latex``, CSV
``DataFrame.to_csv`` of the numbers at full precision, and the HTML table fragment
``Styler.to_html``. Numbers are written by :func:`unlearnbench.display.fmt_stat`. The best
cell of each column among the *ranked* rows is bold (reference rows never are), judged as the
column declares: the largest mean (higher), the smallest mean (lower), the smallest gap to the
reference model, or the value closest to the target. ``html.py`` builds whole pages on top.
"""

from __future__ import annotations

import io
from html import escape

import pandas as pd

from unlearnbench.display import fmt_number, fmt_stat
from unlearnbench.leaderboard.table_model import TableModel, from_section


def header(c) -> str:
    """Column header: the metric and how it is judged (``ua Δ↓``, ``privleak →0``, ``fid ↓``)."""
    return f"{c.header} {c.symbol()}".strip()


def cell_text(cell: dict | None) -> str:
    return "—" if cell is None else fmt_stat(cell["mean"], cell["std"], cell["deterministic"])


def display_frame(model: TableModel, bold=lambda s: s) -> pd.DataFrame:
    """The table as strings (text columns + formatted metric cells); ``bold`` marks the best cells."""
    best = model.best()
    out = model.text.copy() if model.ranked else model.text.drop(columns=["rank"], errors="ignore")
    for c in model.columns:
        out[header(c)] = [bold(cell_text(model.cell(i, c.key))) if model.is_best(i, c.key, best)
                          else cell_text(model.cell(i, c.key)) for i in range(len(model.rows))]
    return out


def notes(model: TableModel) -> str:
    """What the table's symbols mean and the reference values gaps are taken to."""
    parts = [model.note] if model.note else []
    gaps = [f"{c.header} {fmt_number(c.reference_value)}" for c in model.columns if c.shown_as == "gap"]
    if gaps:
        parts.append("Δ: gap |value − reference| to the reference model (" + ", ".join(gaps) + ").")
    if any(c.better == "target" for c in model.columns):
        parts.append("→x: closest to x is best.")
    refs = [r.label for r in model.rows if r.role != "ranked"]
    if refs and not model.ranked:
        parts.append(f"Reference rows ({', '.join(refs)}) are shown, never bold.")
    return " ".join(parts)


# -- Markdown -------------------------------------------------------------------------------------
def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(model: TableModel) -> str:
    disp = display_frame(model, bold=lambda s: f"**{s}**").map(_md)
    disp.columns = [_md(c) for c in disp.columns]
    n_text = len(disp.columns) - len(model.columns)
    body = disp.to_markdown(index=False, colalign=["left"] * n_text + ["right"] * len(model.columns))
    note = notes(model)
    return f"### {_md(model.title)}\n\n{body}\n" + (f"\n{_md(note)}\n" if note else "")


# -- LaTeX ----------------------------------------------------------------------------------------
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
          "—": "--", "±": r"$\pm$", "Δ": r"$\Delta$", "→": r"$\rightarrow$", "−": "-", "|": r"$|$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(s))


def to_latex(model: TableModel) -> str:
    """A ``booktabs`` table (needs ``\\usepackage{booktabs}``) from ``Styler.to_latex``; best cells bold."""
    marker = "\x00best\x00"
    disp = display_frame(model, bold=lambda s: marker + s)
    styles = disp.map(lambda s: "font-weight: bold;" if str(s).startswith(marker) else "")
    disp = disp.map(lambda s: latex_escape(str(s).replace(marker, "")))
    disp.columns = [latex_escape(c) for c in disp.columns]
    n_text = len(disp.columns) - len(model.columns)
    styler = disp.style.hide(axis="index").apply(lambda _: styles.set_axis(disp.columns, axis=1), axis=None)
    tex = styler.to_latex(hrules=True, caption=latex_escape(model.title), position="t", position_float="centering",
                          column_format="l" * n_text + "r" * len(model.columns), convert_css=True)
    note = notes(model)
    if note:  # what the symbols mean, under the tabular
        tex = tex.replace("\\end{tabular}\n", f"\\end{{tabular}}\n\\par\\footnotesize {latex_escape(note)}\n", 1)
    return tex


# -- CSV ------------------------------------------------------------------------------------------
def _shortest(v: float) -> str:
    """The shortest text that reads back as the same float (full precision)."""
    return repr(float(v))


def to_csv(model: TableModel) -> str:
    """Wide CSV: the text columns, then per metric column ``mean``, ``std``, ``ci95_low``, ``ci95_high``,
    ``n`` of the shown quantity (the gap for Δ columns, plus ``value_mean``), full precision."""
    out = model.text.copy()
    for c in model.columns:
        for stat, name in (("mean", "mean"), ("std", "std"), ("low", "ci95_low"), ("high", "ci95_high"),
                           ("n_seeds", "n")):
            col = model.data[(c.key, stat)] if len(model.data) else pd.Series(dtype=float)
            out[f"{c.header} {name}"] = col.astype("Int64") if stat == "n_seeds" else col
        if c.shown_as == "gap":
            out[f"{c.header} value_mean"] = model.data[(c.key, "value_mean")] if len(model.data) else []
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n", float_format=_shortest)
    return buf.getvalue()


# -- HTML (a table fragment; html.py makes the page) ----------------------------------------------
def _html_cell(model: TableModel, i: int, c, link_prefix: str = "") -> str:
    cell = model.cell(i, c.key)
    if cell is None:
        return '<span class="m" data-value="">—</span>'
    key = cell["judged"] if cell["judged"] is not None else cell["mean"]
    text = escape(cell_text(cell)).replace("± ", "±\u00a0")  # a line may break before ±, not after it
    parts = [f'<span class="m" data-value="{float(key)!r}">{text}</span>']
    if c.shown_as == "gap":
        parts.append(f'<span class="raw">value {escape(fmt_number(cell["value_mean"]))}</span>')
    if cell["low"] is not None:
        parts.append(f'<span class="ci">[{fmt_number(cell["low"])}, {fmt_number(cell["high"])}]</span>')
    links = []
    for s in model.seeds.get((i, c.key), []):
        text = escape(fmt_number(s["value"]))
        title = escape(f"seed {s['seed']}: per-sample rows")
        links.append(f'<a class="seed" href="{escape(link_prefix + s["samples"])}" title="{title}">{text}</a>' if s["samples"]
                     else f'<span class="seed">{text}</span>')
    if links:
        parts.append('<span class="seeds">' + " ".join(links) + "</span>")
    return "".join(parts)


def _files_html(row, link_prefix: str) -> str:
    """Links from a row to every seed's result, per-sample rows, reference artefacts and attachments
    (one link for a file all seeds share, e.g. the reference)."""
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for r in row.results:
        f = r.get("files") or {}
        run = f'{r["task"]} s{r["seed"]}' if r.get("task") else f's{r["seed"]}'
        items = [("result", f.get("result"), None), ("samples", f.get("samples"), None)]
        items += [("reference", x["path"], x.get("sha256")) for x in f.get("references") or []]
        items += [(a["role"].replace("_", " "), a["path"], None) for a in f.get("attachments") or []]
        for name, path, sha in items:
            if path:
                groups.setdefault(name, []).append((run, path, sha))
    lines = []
    for name, links in groups.items():
        if len({sha for *_, sha in links}) == 1 and links[0][2] is not None:  # one file every seed shares
            lines.append(f'<span class="files"><a href="{escape(link_prefix + links[0][1])}">{escape(name)}</a></span>')
        else:
            html = " ".join(f'<a href="{escape(link_prefix + p)}" title="{escape(name)}, {escape(run)}">{escape(run)}</a>'
                            for run, p, _ in links)
            lines.append(f'<span class="files">{escape(name)}: {html}</span>')
    return "".join(lines)


def to_html_table(model: TableModel, table_id: str, link_prefix: str = "") -> str:
    """The table as an HTML fragment (``Styler.to_html``): a rank column (ranked tables), the entry
    (label linking to its model card, method, seeds, and links to every seed's files), one column
    per metric (header linking to ``#metric-<name>``; per-seed values linking to their per-sample
    files; a ``data-value`` sort key). ``link_prefix`` is prepended to every file path."""
    best = model.best()
    out = pd.DataFrame(index=range(len(model.rows)))
    classes = pd.DataFrame(index=out.index)
    role = ["" if r.role == "ranked" else " refrow" for r in model.rows]
    if model.ranked:
        out["rank"] = [f'<span data-value="{"" if r.rank is None else r.rank}">'
                       f'{escape(str(model.text.iloc[i]["rank"]))}</span>' for i, r in enumerate(model.rows)]
        classes["rank"] = ["num rank" + x for x in role]
    entry = []
    for i, r in enumerate(model.rows):
        label = f'<a href="#{escape(r.anchor)}">{escape(r.label)}</a>' if r.anchor else escape(r.label)
        badge = f' <span class="badge">{escape(r.role)}</span>' if r.role != "ranked" else ""
        sub = " · ".join(x for x in (r.method, f"{len(r.seeds)} seed{'s' if len(r.seeds) != 1 else ''}") if x)
        entry.append(f'<span data-value="{escape(r.label.lower())}">{label}</span>{badge}<span class="sub">{escape(sub)}</span>'
                     + _files_html(r, link_prefix))
    out["entry"] = entry
    classes["entry"] = ["text entry" + x for x in role]
    for c in model.columns:
        name = escape(c.header).replace("/", "/<wbr>").replace("_", "_<wbr>")  # break names at / and _
        head = (f'<a href="#metric-{escape(c.metric.replace("/", "-"))}" title="metric card">{name}</a>'
                f' <span class="dir">{escape(c.symbol())}</span>')
        out[head] = [_html_cell(model, i, c, link_prefix) for i in range(len(model.rows))]
        classes[head] = ["num" + role[i] + (" best" if model.is_best(i, c.key, best) else "")
                         for i in range(len(model.rows))]
    styler = out.style.hide(axis="index").set_td_classes(classes)
    html = styler.to_html(table_attributes='class="lb"', table_uuid=table_id).split("</style>", 1)[-1].strip()
    cols = ('<col class="c-rank">' if model.ranked else "") + '<col class="c-entry">' + \
        '<col class="c-metric">' * len(model.columns)
    head, rest = html.split(">", 1)  # widths: fixed table layout, metric columns share what is left
    return f"{head}><colgroup>{cols}</colgroup>{rest}"


# -- whole leaderboards ---------------------------------------------------------------------------
def leaderboard_frame(board: dict) -> pd.DataFrame:
    """Long form: one row per (task section, entry, metric) with every statistic at full precision."""
    recs = []
    for t in board["tasks"]:
        judged = {m["name"]: m for m in t["metrics"]}
        for e in t["entries"]:
            for name, s in e["metrics"].items():
                d = s.get("distance") or {}
                lo, hi = s["ci95"] or (None, None)
                dlo, dhi = d.get("ci95") or (None, None)
                recs.append({"task": t["name"], "task_version": t["version"], "variant": t.get("variant") or "",
                             "role": e.get("role", "ranked"), "rank": e["rank"], "label": e["label"],
                             "method": e["method"] or "", "model": e["model"] or "",
                             "seeds": " ".join(map(str, e["seeds"])), "metric": name,
                             "better": judged.get(name, {}).get("better", ""),
                             "higher_is_better": str(s["higher_is_better"]).lower(), "mean": s["mean"], "std": s["std"],
                             "ci95_low": lo, "ci95_high": hi, "n_seeds": s["n_seeds"],
                             "deterministic": str(bool(s.get("deterministic"))).lower(), "anchor": s.get("anchor"),
                             "distance_mean": d.get("mean"), "distance_std": d.get("std"),
                             "distance_ci95_low": dlo, "distance_ci95_high": dhi})
    frame = pd.DataFrame.from_records(recs)
    if len(frame):
        frame["rank"] = frame["rank"].astype("Int64")
    return frame


def render_leaderboard(board: dict, fmt: str) -> str:
    """``md``, ``latex`` or ``csv`` text of a leaderboard (``html.render_html`` makes the page)."""
    from unlearnbench.errors import UserError

    if fmt == "csv":
        buf = io.StringIO()
        leaderboard_frame(board).to_csv(buf, index=False, lineterminator="\n", float_format=_shortest)
        return buf.getvalue()
    models = [from_section(t) for t in board["tasks"]]
    if fmt == "md":
        head = f"# {_md(board['title'])}\n\n" if board.get("title") else ""
        return head + "\n".join(to_markdown(m) for m in models)
    if fmt == "latex":
        return "\n".join(to_latex(m) for m in models)
    raise UserError(f"unknown format {fmt!r}; use md, latex, csv or html")
