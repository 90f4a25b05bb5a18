"""``leaderboard build``: result v1 files -> one leaderboard v1 JSON.

Results are grouped into sections by (task, version) — numbers of different task versions
are never compared — and, inside a section, into entries by (label, method, method config,
and the model name for results without a method): the seeds of one entry. Every metric of an
entry is summarised over its seeds as mean, sample std (ddof=1) and a 95% confidence interval
of the mean from Student's t with n-1 degrees of freedom (``scipy.stats.t``). Entries are
ranked by the mean of the task's ``rank_by`` metric (direction: the metric's
``higher_is_better``), with competition ranking (1, 2, 2, 4); entries lacking it come last
with rank null.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

from unlearnbench import __version__
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.checks import validate_file
from unlearnbench.leaderboard.schema import LEADERBOARD_SCHEMA, validate
from unlearnbench.results import canonical_json_hash, sha256_file, utc_now


def seed_stats(values: Sequence[float | None], higher_is_better: bool) -> dict:
    """Mean, std (ddof=1) and t-based 95% CI over the finite values of ``values``."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    out = {"mean": float(finite.mean()) if n else None, "std": None, "ci95": None, "n_seeds": n,
           "values": [None if v is None or not math.isfinite(v) else float(v) for v in values],
           "higher_is_better": bool(higher_is_better)}
    if n >= 2:
        std = float(finite.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        out.update(std=std, ci95=[out["mean"] - half, out["mean"] + half])
    return out


def competition_ranks(keys: list[float | None], higher_is_better: bool) -> list[int | None]:
    """Rank values ``1, 2, 2, 4`` (ties share the best rank); None ranks as None."""
    ranks: list[int | None] = []
    present = [k for k in keys if k is not None]
    for k in keys:
        if k is None:
            ranks.append(None)
        else:
            better = sum(1 for o in present if (o > k if higher_is_better else o < k))
            ranks.append(better + 1)
    return ranks


def _entry_key(doc: dict) -> tuple:
    method = doc.get("method")
    if method:
        return (doc["label"], method["name"], canonical_json_hash(method.get("config")), None)
    return (doc["label"], None, None, (doc.get("model") or {}).get("name"))


def _provenance(path: str, doc: dict) -> dict:
    env = doc.get("environment") or {}
    return {
        "path": str(path), "sha256": sha256_file(path), "seed": doc["seed"], "run_id": doc.get("run_id"),
        "unlearnbench_version": doc.get("unlearnbench_version"), "commit": env.get("unlearnbench_commit"),
        "created": doc.get("created"),
        "hardware": {k: env.get(k) for k in ("device", "dtype", "platform", "machine", "cpu_count")},
    }


def _task_info(name: str):
    from unlearnbench.runner import get_task

    try:
        return get_task(name)
    except UserError:
        return None


def _metric_direction(name: str, docs: list[dict]) -> bool:
    from unlearnbench.registry import METRICS

    if name in METRICS:
        hib = METRICS.meta(name).get("higher_is_better")
        if hib is not None:
            return bool(hib)
    for d in docs:
        if name in d["metrics"]:
            return bool(d["metrics"][name]["higher_is_better"])
    return True


def _axes(task, metric_names: list[str], rank_metric: str) -> list[str] | None:
    """[x, y] of the forget-vs-utility plot: the task's ``settings['leaderboard_axes']`` if set,
    else the rank metric against the first other declared metric present."""
    declared = list((getattr(task, "settings", None) or {}).get("leaderboard_axes") or [])
    if len(declared) == 2 and all(m in metric_names for m in declared):
        return declared
    others = [m for m in metric_names if m != rank_metric]
    if rank_metric in metric_names and others:
        return [rank_metric, others[0]]
    return None


def build_leaderboard(paths: Iterable[str | os.PathLike], *, title: str | None = None,
                      root: str | os.PathLike | None = None, allow_external_references: bool = False) -> dict:
    """Validate every result and build the leaderboard document (schema-checked before return)."""
    paths = [str(p) for p in paths]
    if not paths:
        raise UserError("leaderboard build needs at least one result file")
    docs: list[tuple[str, dict]] = []
    bad: list[str] = []
    for p in paths:
        rep = validate_file(p, root=root, allow_external_references=allow_external_references)
        if rep.ok:
            docs.append((p, rep.result))
        else:
            bad += [f"{p}: {x}" for x in rep.problems]
    if bad:
        more = f" (+{len(bad) - 3} more; run `unlearnbench leaderboard validate`)" if len(bad) > 3 else ""
        raise UserError(f"{len(bad)} problem(s) in the results: {'; '.join(bad[:3])}{more}")

    sections: dict[tuple[str, int], list[tuple[str, dict]]] = defaultdict(list)
    for p, d in docs:
        sections[(d["task"]["name"], d["task"]["version"])].append((p, d))

    out_tasks = []
    for (tname, tver), items in sorted(sections.items()):
        task = _task_info(tname)
        section_docs = [d for _, d in items]
        present = {m for d in section_docs for m in d["metrics"]}
        declared = [m for m in (task.metrics if task else ()) if m in present]
        metric_names = declared + sorted(present - set(declared))
        rank_metric = (task.rank_by if task and task.rank_by else None) or (metric_names[0] if metric_names else "")
        directions = {m: _metric_direction(m, section_docs) for m in metric_names}
        rank_hib = directions.get(rank_metric, _metric_direction(rank_metric, section_docs))

        groups: dict[tuple, list[tuple[str, dict]]] = defaultdict(list)
        for p, d in items:
            groups[_entry_key(d)].append((p, d))
        entries = []
        for key, runs in groups.items():
            runs.sort(key=lambda pd: pd[1]["seed"])
            seeds = [d["seed"] for _, d in runs]
            dup = {s for s in seeds if seeds.count(s) > 1}
            if dup:
                files = [p for p, d in runs if d["seed"] in dup]
                raise UserError(f"{tname}: entry {key[0]!r} has seed {sorted(dup)[0]} more than once ({', '.join(files)})")
            first = runs[0][1]
            entries.append({
                "rank": None, "label": first["label"],
                "method": (first.get("method") or {}).get("name"),
                "method_config": (first.get("method") or {}).get("config"),
                "model": (first.get("model") or {}).get("name"),
                "ingested": (first.get("ingested") or {}).get("format"),
                "seeds": seeds,
                "metrics": {m: seed_stats([(d["metrics"].get(m) or {}).get("value") for _, d in runs], directions[m])
                            for m in metric_names if any(m in d["metrics"] for _, d in runs)},
                "results": [_provenance(p, d) for p, d in runs],
            })
        keys = [(e["metrics"].get(rank_metric) or {}).get("mean") for e in entries]
        for e, r in zip(entries, competition_ranks(keys, rank_hib)):
            e["rank"] = r
        entries.sort(key=lambda e: (e["rank"] is None, e["rank"] or 0, e["label"]))
        out_tasks.append({
            "name": tname, "version": tver, "modality": section_docs[0]["task"].get("modality"),
            "description": task.description if task else None,
            "rank_by": {"metric": rank_metric, "higher_is_better": rank_hib},
            "metrics": [{"name": m, "higher_is_better": directions[m], "headline": m in set(declared) or not declared}
                        for m in metric_names],
            "axes": _axes(task, metric_names, rank_metric),
            "entries": entries,
        })
    board = {"schema": LEADERBOARD_SCHEMA, "created": utc_now(), "unlearnbench_version": __version__,
             "title": title, "tasks": out_tasks}
    validate(board, "leaderboard", "built leaderboard")
    return board


def load_leaderboard(path: str | os.PathLike) -> dict:
    from unlearnbench.results import read_json

    doc = read_json(path, "leaderboard file")
    if not isinstance(doc, dict) or doc.get("schema") != LEADERBOARD_SCHEMA:
        raise UserError(f"not an {LEADERBOARD_SCHEMA} file: {path}")
    validate(doc, "leaderboard", str(Path(path)))
    return doc
