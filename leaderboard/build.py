"""``leaderboard build``: result v1 files -> one leaderboard v1 JSON.

1. **Integrity.** Every file is validated (``checks.validate_files``: schema, hashes, run_id,
   one run under two seeds). Results scored with ``--limit`` are refused. Results of one task
   are pooled into one ranked *section* only when they are comparable (``comparability.py``:
   version, world scale, spec and data hashes, reference artefacts); the seeds of one *entry*
   (label, method, method config; the model name for results without a method) must also share
   the prompt template. Otherwise the build stops with one line naming the differing field, or,
   with ``separate=True`` (``--separate``), keeps them as separate sections / entries, each
   named by what sets it apart.
2. **Meaning.** Each metric is judged as its declaration says (``unlearnbench.metric.judgement``):
   higher, lower, closest to the reference model (the value in the section's reference artefact,
   ``payload["metrics"]``; shown as the gap ``|value - reference|``) or closest to a target
   value. Entries of a world's own models (target, retain: ``model.world_role``) and of exact
   methods (registered with ``reference=True``: Retrain) are *reference rows*: shown, never
   ranked. The others are ranked by the task's ``rank_by`` metric as judged (competition ranks
   1, 2, 2, 4; entries lacking it come last with rank null).
3. **Statistics** over seeds (``stats.py``): mean, std, a percentile bootstrap interval that
   never leaves the metric's range; deterministic entries carry no spread.
4. **Cards and links** (``cards.py``): a model card per entry, a metric card per metric, and
   per seed the result, per-sample, reference and attachment files relative to ``base`` (the
   folder the leaderboard JSON is written to).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from unlearnbench import __version__
from unlearnbench.errors import UserError
from unlearnbench.leaderboard import comparability as C
from unlearnbench.leaderboard.cards import metric_card, model_card, provenance
from unlearnbench.leaderboard.checks import inside, validate_files
from unlearnbench.leaderboard.schema import LEADERBOARD_SCHEMA, validate
from unlearnbench.leaderboard.stats import INTERVAL_METHOD, competition_ranks, seed_stats
from unlearnbench.results import canonical_json_hash, read_json, utc_now


def _task_info(name: str):
    from unlearnbench.runner import get_task

    try:
        return get_task(name)
    except UserError:
        return None


def entry_role(doc: dict) -> str:
    """``target`` / ``reference`` for a world's own models and exact methods, else ``ranked``."""
    from unlearnbench.registry import METHODS

    role = (doc.get("model") or {}).get("world_role")
    if role:
        return "target" if role == "target" else "reference"
    method = (doc.get("method") or {}).get("name")
    key = f"{doc['task'].get('modality')}:{method}"
    if method and key in METHODS and METHODS.meta(key).get("reference"):
        return "reference"
    return "ranked"


def _entry_key(doc: dict) -> tuple:
    method = doc.get("method")
    if method:
        return (doc["label"], method["name"], canonical_json_hash(method.get("config")), None)
    return (doc["label"], None, None, (doc.get("model") or {}).get("name"))


def _comparable_groups(where: str, items: list[tuple[str, dict]], fields, separate: bool) -> list[tuple[str | None, list]]:
    """``[(variant name or None, items)]``: one group when all items agree on ``fields``."""
    groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for p, d in items:
        groups[C.signature(d, fields)].append((p, d))
    if len(groups) == 1:
        return [(None, items)]
    (pa, a), (pb, b) = [g[0] for g in list(groups.values())[:2]]
    if not separate:
        raise UserError(f"{where}: {C.describe_difference(C.first_difference(a, b, fields), pa, pb)}: they are not "
                        "comparable (pass --separate to keep them apart)")
    names = C.variant_names([d for _, d in items], fields)
    return [(names[sig], g) for sig, g in groups.items()]


def reference_values(path: str, doc: dict, root, allow_external: bool) -> dict:
    """``payload["metrics"]`` of the result's reference artefact (the reference model's values), or {}."""
    refs = doc.get("references") or []
    if len(refs) != 1:
        return {}
    folder = Path(path).parent
    target, err = inside(folder, refs[0]["path"], Path(root) if root is not None else folder,
                         allow_absolute=allow_external)
    if err or target is None:
        return {}
    payload = (read_json(target, "reference file") or {}).get("payload") or {}
    values = payload.get("metrics") if isinstance(payload, dict) else None
    return {k: float(v) for k, v in (values or {}).items() if isinstance(v, (int, float))}


def summarize_entry(runs: list[tuple[str, dict]], names: list[str], judged: dict, refs: dict, base: Path,
                    variant: str | None = None) -> dict:
    """One entry from its results (one per seed): role, seed statistics per metric (with the
    distance to the reference value / target for metrics judged by one), model card, files."""
    runs = sorted(runs, key=lambda pd: pd[1]["seed"])
    seeds = [d["seed"] for _, d in runs]
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        files = [p for p, d in runs if d["seed"] == dup[0]]
        raise UserError(f"{runs[0][1]['task']['name']}: entry {runs[0][1]['label']!r} has seed {dup[0]} more than once "
                        f"({', '.join(files)})")
    first = runs[0][1]
    metrics = {}
    for m in names:
        if not any(m in d["metrics"] for _, d in runs):
            continue
        j = judged[m]
        values = [(d["metrics"].get(m) or {}).get("value") for _, d in runs]
        s = seed_stats(values)
        s["higher_is_better"] = bool(next(d["metrics"][m]["higher_is_better"] for _, d in runs if m in d["metrics"]))
        anchor = refs.get(m.rsplit("/", 1)[-1]) if j.better == "reference" else j.target
        if j.is_distance and anchor is not None:
            s["anchor"] = anchor
            s["distance"] = seed_stats([j.distance(v, anchor) for v in values])
        metrics[m] = s
    return {
        "rank": None, "role": entry_role(first), "variant": variant,
        "label": first["label"] + (f" [{variant}]" if variant else ""),
        "method": (first.get("method") or {}).get("name"), "method_config": (first.get("method") or {}).get("config"),
        "model": (first.get("model") or {}).get("name"), "ingested": (first.get("ingested") or {}).get("format"),
        "seeds": seeds, "metrics": metrics, "card": model_card(runs),
        "results": [provenance(p, d, base) for p, d in runs],
    }


def judged_mean(entry: dict, metric: str, judged) -> float | None:
    """The entry's judged quantity for ``metric``: the mean distance for metrics judged by one (None
    without a reference value to measure it from), else the mean."""
    s = entry["metrics"].get(metric)
    if s is None:
        return None
    if judged is not None and judged.is_distance:
        return (s.get("distance") or {}).get("mean")
    return s["mean"]


def _section(tname: str, tver: int, variant: str | None, items: list, base: Path, root, allow_external: bool,
             separate: bool) -> dict:
    """One ranked table: comparable results of one task, grouped into entries, judged and ranked."""
    from unlearnbench.metric import judgement

    task = _task_info(tname)
    docs = [d for _, d in items]
    modality = docs[0]["task"].get("modality")
    present = {m for d in docs for m in d["metrics"]}
    declared = [m for m in (task.metrics if task else ()) if m in present]
    names = declared + sorted(present - set(declared))
    stored = {m: next(d["metrics"][m]["higher_is_better"] for d in docs if m in d["metrics"]) for m in names}
    judged = {m: judgement(m, modality=modality, task=tname, stored_higher_is_better=stored[m]) for m in names}
    refs = reference_values(*items[0], root, allow_external)
    rank_metric = (task.rank_by if task and task.rank_by in present else None) or (names[0] if names else "")

    groups: dict[tuple, list] = defaultdict(list)
    for p, d in items:
        groups[_entry_key(d)].append((p, d))
    entries = []
    for runs in groups.values():
        where = f"{tname}: entry {runs[0][1]['label']!r}"
        for ev, sub in _comparable_groups(where, runs, C.SECTION_FIELDS + C.ENTRY_FIELDS, separate):
            entries.append(summarize_entry(sub, names, judged, refs, base, ev))
    ranked = [e for e in entries if e["role"] == "ranked"]
    jr = judged.get(rank_metric)
    keys = [judged_mean(e, rank_metric, jr) for e in ranked]
    for e, r in zip(ranked, competition_ranks(keys, bool(jr and jr.higher_is_better))):
        e["rank"] = r
    order = {"target": 0, "reference": 1, "ranked": 2}
    entries.sort(key=lambda e: (order[e["role"]], e["rank"] is None, e["rank"] or 0, e["label"]))
    metrics = []
    for m in names:
        j = judged[m]
        anchor = refs.get(m.rsplit("/", 1)[-1]) if j.better == "reference" else j.target
        metrics.append({"name": m, "higher_is_better": stored[m], "headline": m in set(declared) or not declared,
                        "better": j.better, "range": [j.low, j.high], "target": j.target,
                        "reference_value": anchor if j.better == "reference" else None,
                        "shown_as": "gap" if j.better == "reference" and anchor is not None else "value",
                        "card": metric_card(m)})
    return {
        "name": tname, "version": tver, "modality": modality, "variant": variant,
        "description": task.description if task else None,
        "comparability": {**{k: docs[0]["task"].get(k) for k in ("spec_sha256", "data_sha256", "scale")},
                          "references": [list(r) for r in C.references_of(docs[0])]},
        "rank_by": {"metric": rank_metric, "higher_is_better": bool(jr and jr.higher_is_better),
                    "better": jr.better if jr else "higher"},
        "metrics": metrics, "axes": _axes(task, metrics, rank_metric), "entries": entries,
    }


def _axes(task, metrics: list[dict], rank_metric: str) -> list[str] | None:
    """[x, y] of the scatter plot: the task's ``settings['leaderboard_axes']`` if set, else the rank
    metric against the first other headline metric."""
    names = [m["name"] for m in metrics if m["headline"]]
    declared = list((getattr(task, "settings", None) or {}).get("leaderboard_axes") or [])
    if len(declared) == 2 and all(m in names for m in declared):
        return declared
    others = [m for m in names if m != rank_metric]
    return [rank_metric, others[0]] if rank_metric in names and others else None


def build_leaderboard(paths: Iterable[str | os.PathLike], *, title: str | None = None,
                      root: str | os.PathLike | None = None, allow_external_references: bool = False,
                      separate: bool = False, base: str | os.PathLike | None = None) -> dict:
    """Validate every result and build the leaderboard document (schema-checked before return).

    ``base`` is the folder the document will be written to: file links are relative to it.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise UserError("leaderboard build needs at least one result file")
    reports = validate_files(paths, root=root, allow_external_references=allow_external_references)
    bad = [f"{r.path}: {x}" for r in reports for x in r.problems]
    if bad:
        more = f" (+{len(bad) - 3} more; run `unlearnbench leaderboard validate`)" if len(bad) > 3 else ""
        raise UserError(f"{len(bad)} problem(s) in the results: {'; '.join(bad[:3])}{more}")
    docs = [(r.path, r.result) for r in reports]
    limited = [(p, d["task"]["limit"]) for p, d in docs if d["task"].get("limit") is not None]
    if limited:
        p, n = limited[0]
        raise UserError(f"{p}: scored with --limit {n} (a subset of the task's samples): a leaderboard takes only "
                        f"results on the whole task" + (f" (+{len(limited) - 1} more)" if len(limited) > 1 else ""))
    base_p = Path(base).resolve() if base is not None else Path.cwd()
    by_task: dict[tuple[str, int], list] = defaultdict(list)
    for p, d in docs:
        by_task[(d["task"]["name"], d["task"]["version"])].append((p, d))
    sections = []
    for (tname, tver), items in sorted(by_task.items()):
        for variant, group in _comparable_groups(tname, items, C.SECTION_FIELDS, separate):
            sections.append(_section(tname, tver, variant, group, base_p, root, allow_external_references, separate))
    board = {"schema": LEADERBOARD_SCHEMA, "created": utc_now(), "unlearnbench_version": __version__,
             "title": title, "interval": INTERVAL_METHOD, "tasks": sections}
    validate(board, "leaderboard", "built leaderboard")
    return board


def load_leaderboard(path: str | os.PathLike) -> dict:
    doc = read_json(path, "leaderboard file")
    if not isinstance(doc, dict) or doc.get("schema") != LEADERBOARD_SCHEMA:
        raise UserError(f"not an {LEADERBOARD_SCHEMA} file: {path}")
    validate(doc, "leaderboard", str(Path(path)))
    return doc
