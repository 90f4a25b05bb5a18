"""``leaderboard render --format html``: one self-contained page that works from disk.

No CDN and no network: the CSS (``leaderboard.css``) and the table-sorting script
(``leaderboard.js``) are inlined, and the plots are inline SVG drawn here. Per task the page
has a sortable table (click a header), a forget-vs-utility scatter of the entries' means with
the Pareto front (entries no other entry beats on both axes), and each entry's provenance
(unlearnbench version, commit, date, hardware of every seed's result). The leaderboard JSON
itself is embedded (``<script type="application/json" id="leaderboard-data">``) for reuse.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from unlearnbench.leaderboard.render import Cell, fmt_cell, fmt_number, headline_metrics

HERE = Path(__file__).resolve().parent
W, H, ML, MR, MT, MB = 520, 340, 64, 16, 16, 44  # plot size and margins (px)


def pareto_front(points: list[tuple[float, float]], higher_x: bool, higher_y: bool) -> list[int]:
    """Indices of the points no other point weakly beats on both axes and strictly on one."""
    g = [((x if higher_x else -x), (y if higher_y else -y)) for x, y in points]
    front = []
    for i, (a, b) in enumerate(g):
        dominated = any(c >= a and d >= b and (c > a or d > b) for j, (c, d) in enumerate(g) if j != i)
        if not dominated:
            front.append(i)
    return front


def _scale(values: list[float], lo_px: float, hi_px: float):
    """A linear scale, or log10 when all values are positive and span over three decades."""
    log = all(v > 0 for v in values) and max(values) / min(values) > 1e3
    tv = [math.log10(v) for v in values] if log else list(values)
    lo, hi = min(tv), max(tv)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def f(v: float) -> float:
        t = math.log10(v) if log else v
        return lo_px + (t - lo) / (hi - lo) * (hi_px - lo_px)

    ticks = [lo + (hi - lo) * k / 4 for k in range(5)]
    labels = [fmt_number(10 ** t if log else t) for t in ticks]
    return f, [lo_px + (t - lo) / (hi - lo) * (hi_px - lo_px) for t in ticks], labels, log


def scatter_svg(task: dict) -> str:
    """Inline SVG of the entries' (x, y) means with the Pareto front, or '' without two axes."""
    axes = task.get("axes")
    if not axes:
        return ""
    xm, ym = axes
    hib = {m["name"]: m["higher_is_better"] for m in task["metrics"]}
    pts, labels = [], []
    for e in task["entries"]:
        x, y = (e["metrics"].get(xm) or {}).get("mean"), (e["metrics"].get(ym) or {}).get("mean")
        if x is not None and y is not None:
            pts.append((x, y))
            labels.append(e["label"])
    if not pts:
        return ""
    fx, xt, xl, xlog = _scale([p[0] for p in pts], ML, W - MR)
    fy, yt, yl, ylog = _scale([p[1] for p in pts], H - MB, MT)
    front = pareto_front(pts, hib.get(xm, True), hib.get(ym, True))
    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'role="img" aria-label="{escape(xm)} vs {escape(ym)}">',
           f'<line class="axis" x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}"/>',
           f'<line class="axis" x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}"/>']
    for px, lab in zip(xt, xl):
        out.append(f'<text class="tick" x="{px:.1f}" y="{H - MB + 14}" text-anchor="middle">{escape(lab)}</text>')
    for py, lab in zip(yt, yl):
        out.append(f'<text class="tick" x="{ML - 4}" y="{py + 3:.1f}" text-anchor="end">{escape(lab)}</text>')
    arrow = {True: "↑ better", False: "↓ better"}
    out.append(f'<text class="tick" x="{(ML + W - MR) / 2:.0f}" y="{H - 8}" text-anchor="middle">'
               f'{escape(xm)}{" (log)" if xlog else ""} — {"→" if hib.get(xm, True) else "←"} better</text>')
    out.append(f'<text class="tick" transform="translate(12 {(MT + H - MB) / 2:.0f}) rotate(-90)" text-anchor="middle">'
               f'{escape(ym)}{" (log)" if ylog else ""} — {arrow[hib.get(ym, True)]}</text>')
    fpts = sorted((pts[i] for i in front), key=lambda p: p[0])
    if len(fpts) > 1:
        coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in fpts)
        out.append(f'<polyline class="pareto" points="{coords}"/>')
    for i, ((x, y), lab) in enumerate(zip(pts, labels)):
        cls = "pt front" if i in front else "pt"
        out.append(f'<circle class="{cls}" cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="5">'
                   f'<title>{escape(lab)}: {escape(xm)}={fmt_number(x)}, {escape(ym)}={fmt_number(y)}</title></circle>')
        out.append(f'<text class="lbl" x="{fx(x) + 7:.1f}" y="{fy(y) - 6:.1f}">{escape(lab)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _provenance(e: dict) -> str:
    items = []
    for r in e["results"]:
        hw = r.get("hardware") or {}
        commit = (r.get("commit") or "unknown")[:10]
        bits = [f"seed {r['seed']}", f"unlearnbench {r.get('unlearnbench_version') or '?'}", f"commit {commit}",
                r.get("created") or "date unknown",
                " / ".join(str(hw[k]) for k in ("device", "dtype") if hw.get(k)) or "device unknown",
                str(hw.get("platform") or "")]
        items.append(f'<li title="{escape(r["path"])}">' + escape(", ".join(b for b in bits if b)) + "</li>")
    extra = f", ingested from {escape(e['ingested'])}" if e.get("ingested") else ""
    return (f"<details><summary>{len(e['results'])} run{'s' if len(e['results']) != 1 else ''}{extra}</summary>"
            f"<ul>{''.join(items)}</ul></details>")


def _num_attr(v) -> str:
    return "" if v is None else repr(float(v))


def task_table(task: dict) -> str:
    metrics = headline_metrics(task)
    best = {}
    for m in metrics:
        vals = [e["metrics"][m["name"]]["mean"] for e in task["entries"]
                if m["name"] in e["metrics"] and e["metrics"][m["name"]]["mean"] is not None]
        if vals:
            best[m["name"]] = max(vals) if m["higher_is_better"] else min(vals)
    head = ['<th class="num">rank</th>', '<th class="text">label</th>', '<th class="text">method</th>',
            '<th class="num">seeds</th>']
    head += [f'<th class="num" title="{"higher" if m["higher_is_better"] else "lower"} is better">'
             f'{escape(m["name"])} {"↑" if m["higher_is_better"] else "↓"}</th>' for m in metrics]
    head.append('<th class="text nosort">provenance</th>')
    rows = []
    for e in task["entries"]:
        cells = [f'<td data-value="{_num_attr(e["rank"])}">{"—" if e["rank"] is None else e["rank"]}</td>',
                 f'<td class="text">{escape(e["label"])}</td>',
                 f'<td class="text">{escape(e["method"] or "—")}</td>',
                 f'<td data-value="{len(e["seeds"])}">{len(e["seeds"])}</td>']
        for m in metrics:
            s = e["metrics"].get(m["name"])
            if s is None:
                cells.append('<td data-value="">—</td>')
                continue
            text = escape(fmt_cell(Cell(s["mean"], s["std"], s["n_seeds"])))
            ci = (f'<span class="ci">95% CI [{fmt_number(s["ci95"][0])}, {fmt_number(s["ci95"][1])}]</span>'
                  if s["ci95"] else "")
            cls = ' class="best"' if s["mean"] is not None and best.get(m["name"]) == s["mean"] else ""
            cells.append(f'<td{cls} data-value="{_num_attr(s["mean"])}">{text}{ci}</td>')
        cells.append(f'<td class="text">{_provenance(e)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="lb" data-task="{escape(task["name"])}"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def render_html(board: dict) -> str:
    css = (HERE / "leaderboard.css").read_text(encoding="utf-8")
    js = (HERE / "leaderboard.js").read_text(encoding="utf-8")
    title = board.get("title") or "unlearnbench leaderboard"
    parts = []
    for i, t in enumerate(board["tasks"]):
        rb = t["rank_by"]
        svg = scatter_svg(t)
        plot = (f'<p class="note">Means over seeds; the dashed line joins the Pareto front '
                f'({escape(t["axes"][0])} vs {escape(t["axes"][1])}).</p>{svg}') if svg else ""
        parts.append(
            f'<section id="task-{i}"><h2>{escape(t["name"])} <small>v{t["version"]}</small></h2>'
            f'<p class="note">{escape((t.get("description") or "").rstrip("."))}{". " if t.get("description") else ""}Ranked by {escape(rb["metric"])} '
            f'({"higher" if rb["higher_is_better"] else "lower"} is better). Cells: mean ± std over seeds, 95% '
            f't-interval below. Click a header to sort.</p>{task_table(t)}{plot}</section>')
    data = (json.dumps(board, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))  # inert inside <script>: no "</script>" or "<!--" can appear
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{css}</style></head><body><h1>{escape(title)}</h1>"
            f"<p class=\"meta\">Built {escape(board['created'])} with unlearnbench {escape(board['unlearnbench_version'])} "
            f"from result v1 files; every number can be re-derived with <code>unlearnbench leaderboard verify</code>.</p>"
            + "".join(parts)
            + f'<script type="application/json" id="leaderboard-data">{data}</script>'
            + f"<script>{js}</script></body></html>\n")
