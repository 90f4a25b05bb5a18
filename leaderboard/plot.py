"""Inline SVG scatter plots of a leaderboard section: axes fitted to each metric's range, labels that never overprint.

x and y are the *shown* quantities of two metric columns (the value, or the gap to the reference
model for Δ columns). Each axis spans the data plus a margin, clipped to the metric's range (a
p-value axis never passes 1); positive data spanning over three decades use a log scale. Ticks
are round numbers (1-2-5 steps, or powers of ten) inside the axis.

Labels are placed greedily, most crowded point first, at the first free spot of a ring of
candidate positions around the point (then farther rings with a leader line): free means inside
the plot, clear of every placed label and of every point. A label with no free spot is replaced
by a number, explained in the legend below the plot. Label widths are estimated from character
classes of the page's font (DejaVu Sans / Verdana metrics, rounded up); the browser test checks
the real boxes.

The Pareto front joins the ranked entries that no other ranked entry beats on both judged axes;
target and reference rows are drawn as hollow squares and are never on it.
"""

from __future__ import annotations

import math
from html import escape

from unlearnbench.display import fmt_number
from unlearnbench.leaderboard.table_model import TableModel

W, H, ML, MR, MT, MB = 560, 380, 70, 18, 14, 52  # viewBox size and margins
FONT = 11.0                                     # label font size (px, in viewBox units)
LINE = 14.0                                     # label box height


def text_width(s: str, size: float = FONT) -> float:
    """Upper estimate of ``s``'s width in DejaVu Sans / Verdana at ``size`` px."""
    w = 0.0
    for ch in s:
        if ch in "il.,:;'|!ijtf ()[]":
            w += 0.40
        elif ch in "mwMW@%":
            w += 0.98
        elif ch.isupper() or ch in "&#~":
            w += 0.78
        else:
            w += 0.66
    return w * size + 4.0


def pareto_front(points: list[tuple[float, float]], higher_x: bool, higher_y: bool) -> list[int]:
    """Indices of the points no other point weakly beats on both axes and strictly on one."""
    g = [((x if higher_x else -x), (y if higher_y else -y)) for x, y in points]
    front = []
    for i, (a, b) in enumerate(g):
        if not any(c >= a and d >= b and (c > a or d > b) for j, (c, d) in enumerate(g) if j != i):
            front.append(i)
    return front


def _nice_step(span: float) -> float:
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def axis(values: list[float], bounds: tuple[float | None, float | None], lo_px: float, hi_px: float):
    """``(to_px, tick positions, tick labels, log)`` for ``values`` within ``bounds``."""
    lo_b, hi_b = bounds
    log = all(v > 0 for v in values) and max(values) / min(values) > 1e3
    t = [math.log10(v) for v in values] if log else list(values)
    lo, hi = min(t), max(t)
    span = hi - lo if hi > lo else (abs(hi) * 0.2 if hi else 1.0)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    if lo_b is not None and (not log or lo_b > 0):
        lo = max(lo, math.log10(lo_b) if log else lo_b)
    if hi_b is not None and (not log or hi_b > 0):
        hi = min(hi, math.log10(hi_b) if log else hi_b)
    if hi <= lo:
        hi = lo + 1e-9

    def to_px(v: float) -> float:
        x = math.log10(v) if log else v
        return lo_px + (x - lo) / (hi - lo) * (hi_px - lo_px)

    if log:
        ticks = [10.0 ** k for k in range(math.ceil(lo), math.floor(hi) + 1)]
        step = max(1, math.ceil(len(ticks) / 6))
        ticks = ticks[::-1][::step][::-1]  # keep the top decade (1 for a p-value)
    else:
        step = _nice_step(hi - lo)
        first = math.ceil(lo / step - 1e-9) * step
        ticks = [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]
    return to_px, [to_px(v) for v in ticks], [fmt_number(0.0 if abs(v) < 1e-12 else v) for v in ticks], log


def _overlaps(a, b, pad: float = 1.0) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def place_labels(points: list[tuple[float, float]], labels: list[str], box: tuple[float, float, float, float]):
    """Per point ``(x, y, anchor_x, anchor_y, text, leader)``: the text's baseline-left position, or a
    number when no free spot exists. ``box`` = the plot area (x0, y0, x1, y1)."""
    r_pt = 6.0
    dots = [(x - r_pt, y - r_pt, x + r_pt, y + r_pt) for x, y in points]
    placed: list[tuple[float, float, float, float]] = []
    out: list = [None] * len(points)
    crowd = [sum(1 for q in points if math.hypot(q[0] - p[0], q[1] - p[1]) < 60) for p in points]
    numbered = 0
    for i in sorted(range(len(points)), key=lambda k: (-crowd[k], k)):
        x, y = points[i]
        for text in (labels[i], None):
            if text is None:
                numbered += 1
                text = str(numbered)
            w = text_width(text)
            spot = _free_spot(x, y, w, box, placed, dots)
            if spot is not None:
                bx, by, leader = spot
                placed.append((bx, by, bx + w, by + LINE))
                out[i] = (bx + 2, by + LINE - 3.5, text, leader, text != labels[i])
                break
            if text != labels[i]:
                out[i] = None  # nowhere at all: the legend still lists it
    return out


def _free_spot(x: float, y: float, w: float, box, placed, dots):
    for ring, leader in ((9.0, False), (24.0, True), (42.0, True), (66.0, True), (98.0, True)):
        d = ring * 0.8  # diagonal offset: clear of the point's own marker on the first ring
        cands = [(x + ring, y - LINE / 2), (x - ring - w, y - LINE / 2), (x - w / 2, y - ring - LINE),
                 (x - w / 2, y + ring), (x + d, y - d - LINE), (x - d - w, y - d - LINE), (x + d, y + d),
                 (x - d - w, y + d)]
        for bx, by in cands:
            b = (bx, by, bx + w, by + LINE)
            if b[0] < box[0] or b[1] < box[1] or b[2] > box[2] or b[3] > box[3]:
                continue
            if any(_overlaps(b, p, 2.0) for p in placed) or any(_overlaps(b, d, 0.5) for d in dots):
                continue
            return bx, by, leader
    return None


def scatter_svg(model: TableModel, x_key: str, y_key: str, plot_id: str) -> tuple[str, list[str]]:
    """``(svg, legend lines)`` of the rows' (x, y) shown means; ('', []) when fewer than one point."""
    cols = {c.key: c for c in model.columns}
    cx, cy = cols[x_key], cols[y_key]
    pts, labels, rows = [], [], []
    for i, r in enumerate(model.rows):
        a, b = model.cell(i, x_key), model.cell(i, y_key)
        if a is not None and b is not None:
            pts.append((a["mean"], b["mean"]))
            labels.append(r.label)
            rows.append(i)
    if not pts:
        return "", []
    fx, xt, xl, xlog = axis([p[0] for p in pts], cx.shown_range(), ML, W - MR)
    fy, yt, yl, ylog = axis([p[1] for p in pts], cy.shown_range(), H - MB, MT)
    px = [(fx(x), fy(y)) for x, y in pts]
    ranked = [k for k, i in enumerate(rows) if model.rows[i].role == "ranked"]
    judged = [(model.cell(rows[k], x_key)["judged"], model.cell(rows[k], y_key)["judged"]) for k in ranked]
    ok = [k for k, (a, b) in zip(ranked, judged) if a is not None and b is not None]
    front_local = pareto_front([judged[ranked.index(k)] for k in ok], not cx.smaller_is_better, not cy.smaller_is_better)
    front = {ok[j] for j in front_local}
    out = [f'<svg class="plot" id="{plot_id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(cx.header)} vs {escape(cy.header)}">',
           f'<rect class="frame" x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}"/>']
    for p, lab in zip(xt, xl):
        out.append(f'<line class="grid" x1="{p:.1f}" y1="{MT}" x2="{p:.1f}" y2="{H - MB}"/>'
                   f'<text class="tick" x="{p:.1f}" y="{H - MB + 15}" text-anchor="middle">{escape(lab)}</text>')
    for p, lab in zip(yt, yl):
        out.append(f'<line class="grid" x1="{ML}" y1="{p:.1f}" x2="{W - MR}" y2="{p:.1f}"/>'
                   f'<text class="tick" x="{ML - 5}" y="{p + 3.5:.1f}" text-anchor="end">{escape(lab)}</text>')
    for c, f, horizontal in ((cx, fx, False), (cy, fy, True)):
        if c.better == "target" and c.target is not None:
            try:
                p = f(c.target)
            except ValueError:
                continue
            lo, hi = (MT, H - MB) if not horizontal else (ML, W - MR)
            if (ML <= p <= W - MR) if not horizontal else (MT <= p <= H - MB):
                out.append(f'<line class="target" x1="{p:.1f}" y1="{lo}" x2="{p:.1f}" y2="{hi}"/>' if not horizontal
                           else f'<line class="target" x1="{lo}" y1="{p:.1f}" x2="{hi}" y2="{p:.1f}"/>')
    out.append(f'<text class="axlabel" x="{(ML + W - MR) / 2:.0f}" y="{H - 10}" text-anchor="middle">'
               f'{escape(_axis_title(cx, xlog, True, W - ML - MR))}</text>')
    out.append(f'<text class="axlabel" transform="translate(14 {(MT + H - MB) / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(_axis_title(cy, ylog, False, H - MT - MB))}</text>')
    fpts = sorted((px[k] for k in front), key=lambda p: p[0])
    if len(fpts) > 1:
        out.append('<polyline class="pareto" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in fpts) + '"/>')
    legend = []
    placement = place_labels(px, labels, (ML + 1, MT + 1, W - MR - 1, H - MB - 1))
    for k, ((a, b), lab) in enumerate(zip(px, labels)):
        i = rows[k]
        tip = f"{lab}: {cx.header}={fmt_number(pts[k][0])}, {cy.header}={fmt_number(pts[k][1])}"
        if model.rows[i].role == "ranked":
            cls = "pt front" if k in front else "pt"
            out.append(f'<circle class="{cls}" cx="{a:.1f}" cy="{b:.1f}" r="5"><title>{escape(tip)}</title></circle>')
        else:
            out.append(f'<rect class="pt ref" x="{a - 4.5:.1f}" y="{b - 4.5:.1f}" width="9" height="9">'
                       f'<title>{escape(tip)} ({model.rows[i].role})</title></rect>')
        spot = placement[k]
        if spot is None:
            legend.append(f"{lab} (not labelled: no room)")
            continue
        tx, ty, text, leader, numbered = spot
        if leader:
            out.append(f'<line class="leader" x1="{a:.1f}" y1="{b:.1f}" x2="{tx + text_width(text) / 2 - 2:.1f}" '
                       f'y2="{ty - LINE / 2 + 3.5:.1f}"/>')
        out.append(f'<text class="lbl" x="{tx:.1f}" y="{ty:.1f}">{escape(text)}</text>')
        if numbered:
            legend.append(f"{text} = {lab}")
    out.append("</svg>")
    return "\n".join(out), legend


def _axis_title(c, log: bool, horizontal: bool, room: float) -> str:
    """The longest of a few titles that fits ``room`` px: the metric (its gap), log, the direction."""
    what = f"{c.header} gap to reference" if c.shown_as == "gap" else c.header
    better = {"higher": "higher", "lower": "lower", "reference": "smaller gap",
              "target": f"closer to {c.target:g}" if c.target is not None else ""}.get(c.better, "")
    arrow = "" if c.better == "target" else ((" →" if horizontal else " ↑") if c.better == "higher" else
                                              (" ←" if horizontal else " ↓"))
    log_s = " (log)" if log else ""
    for title in (f"{what}{log_s} — {better} is better{arrow}", f"{c.header}{log_s} — {better}{arrow}",
                  f"{c.header}{log_s}{arrow}"):
        if text_width(title, 11.0) <= room:
            return title
    return c.header
