"""One self-contained HTML page per leaderboard (or paper table) that works from disk and from a web server.

No CDN and no network: the CSS (``leaderboard.css``) and the script (``leaderboard.js``: sortable
columns, model cards that open when linked) are inlined; plots are inline SVG (``plot.py``); the
tables come from the table model through ``render.to_html_table`` (pandas ``Styler``). Per task
section: the table (target and reference rows marked, best ranked cell bold, each per-seed value
linking to its per-sample rows, each row to its result, samples, reference artefacts and
attachments), a scatter plot of two judged metrics with the Pareto front, and a model card per
entry (model, source, per-seed weights sha256, method and full config, seeds, contact sheets).
Every metric header links to its metric card at the end of the page. File links are relative:
``link_prefix`` leads from the page's folder to the leaderboard's. The leaderboard JSON is
embedded (``<script type="application/json" id="leaderboard-data">``) for reuse.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from unlearnbench.display import fmt_number
from unlearnbench.leaderboard.plot import scatter_svg
from unlearnbench.leaderboard.render import notes, to_html_table
from unlearnbench.leaderboard.table_model import TableModel, from_section

HERE = Path(__file__).resolve().parent
JUDGED = {"higher": "higher is better", "lower": "lower is better",
          "reference": "closest to the reference model is best; tables show the gap |value − reference|",
          "target": "closest to {target} is best"}


def _kv(items: list[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items if v) + "</dl>"


def model_card_html(row, link_prefix: str) -> str:
    """A collapsible model card: what the model is, how it was made, and every seed's files."""
    card = row.card or {}
    model = card.get("model") or {}
    rank = {"target": "target row (not ranked)", "reference": "reference row (not ranked)"}.get(
        row.role, f"rank {row.rank}" if row.rank is not None else "not ranked (metric missing)")
    items = [("row", escape(rank)), ("model", escape(str(model.get("name", "")))),
             ("source", f"<code>{escape(str(model['source']))}</code>" if model.get("source") else ""),
             ("world role", escape(str(model.get("world_role", "")))),
             ("architecture", escape(" · ".join(str(model[k]) for k in ("architecture", "kind", "pipeline_class", "format")
                                               if model.get(k)))),
             ("parameters", f"{model['parameters']:,}" if isinstance(model.get("parameters"), int) else ""),
             ("template", escape(str(card.get("template") or ""))),
             ("method", escape(str(card.get("method") or "none (scored as is)"))),
             ("config", f"<pre>{escape(json.dumps(card['config'], indent=1, sort_keys=True))}</pre>"
              if card.get("config") else ""),
             ("seeds", escape(", ".join(map(str, card.get("seeds") or row.seeds))))]
    runs, sheets = [], []
    for r in row.results:
        f = r.get("files") or {}
        links = [("result", f.get("result")), ("per-sample rows", f.get("samples"))]
        links += [(f"reference ({x['role']})", x["path"]) for x in f.get("references") or []]
        links += [(a["role"].replace("_", " "), a["path"]) for a in f.get("attachments") or []]
        cells = " · ".join(f'<a href="{escape(link_prefix + p)}">{escape(n)}</a>' for n, p in links if p)
        hw = r.get("hardware") or {}
        where = ", ".join(str(hw[k]) for k in ("device", "dtype", "platform") if hw.get(k))
        runs.append(f"<tr><td>{r['seed']}</td><td><code>{escape(str(r.get('weights_sha256') or '—'))}</code></td>"
                    f"<td>{cells}</td><td>{escape(str(r.get('unlearnbench_version') or '?'))} "
                    f"({escape((r.get('commit') or 'no commit')[:10])}), {escape(str(r.get('created') or ''))}, "
                    f"{escape(where)}</td></tr>")
        for a in f.get("attachments") or []:
            if a["role"] == "contact_sheet":
                src = escape(link_prefix + a["path"])
                sheets.append(f'<a href="{src}"><img class="sheet" src="{src}" loading="lazy" '
                              f'alt="contact sheet, seed {r["seed"]}"></a>')
    table = ('<table class="runs"><thead><tr><th>seed</th><th>weights sha256</th><th>files</th><th>made by</th>'
             f'</tr></thead><tbody>{"".join(runs)}</tbody></table>')
    sheet = f'<div class="sheets">{"".join(sheets)}</div>' if sheets else ""
    return (f'<details class="card" id="{escape(row.anchor)}"><summary><b>{escape(row.label)}</b> — model card'
            f'</summary>{_kv(items)}{table}{sheet}</details>')


def metric_cards_html(columns) -> str:
    """One card per metric name (the first column seen for it), linked from every header."""
    seen, out = set(), []
    for c in columns:
        if c.metric in seen:
            continue
        seen.add(c.metric)
        judged = JUDGED[c.better].format(target=f"{c.target:g}" if c.target is not None else "")
        rng = f"[{fmt_number(c.low) if c.low is not None else '−∞'}, {fmt_number(c.high) if c.high is not None else '∞'}]"
        out.append(f'<article class="mcard" id="metric-{escape(c.metric.replace("/", "-"))}"><h3>{escape(c.metric)}</h3>'
                   f'<p class="judged">Judged: {escape(judged)}. Range {escape(rng)}.</p>'
                   f'<pre>{escape(c.card or "No metric card registered.")}</pre></article>')
    return '<section id="metric-cards"><h2>Metric cards</h2>' + "".join(out) + "</section>"


def section_html(model: TableModel, sid: str, axes: list[str] | None, heading: str, intro: str, link_prefix: str) -> str:
    table = to_html_table(model, f"{sid}-table", link_prefix)
    plot = ""
    keys = {c.metric: c.key for c in model.columns}
    if axes and all(a in keys for a in axes):
        svg, legend = scatter_svg(model, keys[axes[0]], keys[axes[1]], f"{sid}-plot")
        if svg:
            leg = ("<ul class=\"legend\">" + "".join(f"<li>{escape(x)}</li>" for x in legend) + "</ul>") if legend else ""
            plot = (f'<figure class="plotwrap">{svg}<figcaption>Means over seeds. Circles: ranked entries (filled orange: '
                    f'the Pareto front, joined by the dashed line); squares: target and reference rows.{leg}'
                    "</figcaption></figure>")
    cards = "".join(model_card_html(r, link_prefix) for r in model.rows)
    head = f"<h2>{heading}</h2>" if heading else ""
    return (f'<section id="{sid}">{head}<p class="note">{intro}{escape(notes(model))} Click a header to '
            f'sort; click a value to open its per-sample rows.</p><div class="tablewrap">{table}</div>'
            f'<div class="below">{plot}<div class="cards"><h3>Model cards</h3>{cards}</div></div></section>')


def page(title: str, meta: str, body: str, data: dict | None = None) -> str:
    css = (HERE / "leaderboard.css").read_text(encoding="utf-8")
    js = (HERE / "leaderboard.js").read_text(encoding="utf-8")
    blob = ""
    if data is not None:  # inert inside <script>: no "</script>" or "<!--" can appear
        text = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        blob = f'<script type="application/json" id="leaderboard-data">{text}</script>'
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{css}</style></head><body><header><h1>{escape(title)}</h1><p class=\"meta\">{meta}</p></header>"
            f"<main>{body}</main>{blob}<script>{js}</script></body></html>\n")


def render_html(board: dict, link_prefix: str = "") -> str:
    """The leaderboard page; ``link_prefix`` leads from the page's folder to the leaderboard JSON's."""
    title = board.get("title") or "unlearnbench leaderboard"
    parts, columns = [], []
    for i, t in enumerate(board["tasks"]):
        model = from_section(t, anchor_prefix=f"t{i}-")
        columns += model.columns
        heading = (f'{escape(t["name"])} <small>v{t["version"]}</small>'
                   + (f' <small class="variant">{escape(t["variant"])}</small>' if t.get("variant") else ""))
        intro = escape((t.get("description") or "").rstrip(".") + ". " if t.get("description") else "")
        parts.append(section_html(model, f"task-{i}", t.get("axes"), heading, intro, link_prefix))
    meta = (f"Built {escape(board['created'])} with unlearnbench {escape(board['unlearnbench_version'])} from result "
            "files only; every number can be re-derived with <code>unlearnbench leaderboard verify</code>. "
            f"Intervals: {escape(board.get('interval') or 'mean ± std over seeds')}")
    return page(title, meta, "".join(parts) + metric_cards_html(columns), board)


def render_table_html(model: TableModel, link_prefix: str = "", axes: list[str] | None = None) -> str:
    """A paper table (``unlearnbench table --format html``) as a page: table, plot, model and metric cards."""
    from unlearnbench.leaderboard.stats import INTERVAL_METHOD

    body = section_html(model, "table", axes, "", "", link_prefix)
    return page(model.title, f"Intervals: {escape(INTERVAL_METHOD)}", body + metric_cards_html(model.columns))
