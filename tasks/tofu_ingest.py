"""Ingest TOFU evaluations made by other tools into result v1 files.

``tofu-legacy``: locuslab/tofu's ``eval_log_aggregated.json`` (top-level keys
``eval_log.json`` (retain), ``eval_log_forget.json``, ``eval_real_author_wo_options.json``,
``eval_real_world_wo_options.json``; each maps a per-sample quantity to ``{index: value}``).
``open-unlearning``: locuslab/open-unlearning's ``TOFU_EVAL.json`` (metric ->
``{agg_value, value_by_index}``; per-index ``avg_loss`` of the correct / paraphrased /
perturbed answers and ROUGE scores).

Both become our per-sample rows (``nll_answer``, ``nll_paraphrased``, ``nll_perturbed``,
``rouge_l_recall``), so the numbers are recomputed by the very same ``tofu`` protocol
aggregation as our own runs, and ``leaderboard verify`` can re-derive them. The retain
model's logs become a reference artefact (its forget-set truth ratios) written beside the
result, its sha256 recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unlearnbench import __version__
from unlearnbench.errors import UserError
from unlearnbench.reference import write_reference
from unlearnbench.registry import INGESTERS
from unlearnbench.results import (
    RESULT_SCHEMA, atomic_write_json, environment, jsonl_text, read_json, sha256_bytes, sha256_file, utc_now,
)
from unlearnbench.runner import get_protocol, get_task, task_block

LEGACY_FILES = {
    "eval_log_forget.json": "forget",
    "eval_log.json": "retain",
    "eval_real_author_wo_options.json": "real_authors",
    "eval_real_world_wo_options.json": "world_facts",
}
_FORGET_SIZE_TO_TASK = {40: "tofu/forget01", 200: "tofu/forget05", 300: "tofu/forget10", 400: "tofu/forget10"}


# -- tofu-legacy ------------------------------------------------------------------------------
def legacy_rows(logs: dict, path: str) -> list[dict]:
    if not isinstance(logs, dict) or not any(k in logs for k in LEGACY_FILES):
        raise UserError(f"{path} is not a TOFU eval_log_aggregated.json (expected keys {', '.join(LEGACY_FILES)})")
    rows = []
    for key, split in LEGACY_FILES.items():
        if key not in logs:
            continue
        log = logs[key]
        for need in ("avg_gt_loss", "average_perturb_loss"):
            if need not in log:
                raise UserError(f"{path}: {key} lacks {need!r}")
        para = log.get("avg_paraphrased_loss", log["avg_gt_loss"])
        for idx in sorted(log["avg_gt_loss"], key=int):
            row = {"split": split, "index": int(idx), "nll_answer": float(log["avg_gt_loss"][idx]),
                   "nll_paraphrased": float(para[idx]),
                   "nll_perturbed": [float(v) for v in log["average_perturb_loss"][idx]]}
            if "rougeL_recall" in log:
                row["rouge_l_recall"] = float(log["rougeL_recall"][idx])
            gen = log.get("generated_text", {}).get(idx)
            if isinstance(gen, (list, tuple)) and len(gen) == 3:
                row["prompt"], row["generation"], row["answer"] = gen
            rows.append(row)
    return rows


# -- open-unlearning ----------------------------------------------------------------------------
_OU_SPLITS = {"forget": "forget", "retain": "retain", "ra": "real_authors", "wf": "world_facts"}


def _find_by_index(doc: dict) -> dict[str, dict]:
    """Every ``{name: {value_by_index: ...}}`` in the document, however deeply nested."""
    found: dict[str, dict] = {}

    def walk(d):
        if isinstance(d, dict):
            for k, v in d.items():
                if isinstance(v, dict) and isinstance(v.get("value_by_index"), dict):
                    found.setdefault(k, v["value_by_index"])
                walk(v)

    walk(doc)
    return found


def open_unlearning_rows(doc: dict, path: str) -> list[dict]:
    metrics = _find_by_index(doc)
    if not metrics:
        raise UserError(f"{path} is not an open-unlearning TOFU_EVAL.json (no metric has value_by_index)")
    rows = []
    for prefix, split in _OU_SPLITS.items():
        gold = metrics.get(f"{prefix}_Q_A_Prob")
        pert = metrics.get(f"{prefix}_Q_A_PERT_Prob")
        if not gold or not pert:
            continue
        para = metrics.get(f"{prefix}_Q_A_PARA_Prob") or gold
        rouge = metrics.get(f"{prefix}_Q_A_ROUGE") or {}
        for idx in sorted(gold, key=int):
            g, p, w = gold[idx], para.get(idx), pert.get(idx)
            if not g or not p or not w:
                continue
            wl = w["avg_loss"] if isinstance(w["avg_loss"], list) else [w["avg_loss"]]
            row = {"split": split, "index": int(idx), "nll_answer": float(g["avg_loss"]),
                   "nll_paraphrased": float(p["avg_loss"]), "nll_perturbed": [float(v) for v in _flat(wl)]}
            r = rouge.get(idx)
            if r and "rougeL_recall" in r:
                row["rouge_l_recall"] = float(r["rougeL_recall"])
                if "rouge1_recall" in r:
                    row["rouge1_recall"] = float(r["rouge1_recall"])
                row.update({k: r[k] for k in ("generation",) if k in r})
                if "ground_truth" in r:
                    row["reference"] = r["ground_truth"]
            for kind, ou_kind in (("paraphrased", "PARA"), ("perturbed", "PERT")):
                v = (metrics.get(f"{prefix}_Q_A_{ou_kind}_ROUGE") or {}).get(idx)
                if v:
                    vals = v["rougeL_recall"] if isinstance(v["rougeL_recall"], list) else [v["rougeL_recall"]]
                    row[f"rouge_l_recall_{kind}"] = float(np.mean(vals))
            if split == "forget":
                for name in ("extraction_strength", "exact_memorization"):
                    v = (metrics.get(name) or {}).get(idx)
                    if v and v.get("score") is not None:
                        row[name] = float(v["score"])
            rows.append(row)
    if not any(r["split"] == "forget" for r in rows):
        raise UserError(f"{path}: found no per-index forget-set losses (forget_Q_A_Prob / forget_Q_A_PERT_Prob)")
    return _with_mia_scores(doc, rows)


def _with_mia_scores(doc: dict, rows: list[dict]) -> list[dict]:
    """Per-sample MIA scores (``mia_*``: ``{forget|holdout: {value_by_index: {i: {score}}}}``) into the
    forget rows and new holdout rows, so the AUCs and PrivLeak are recomputed from them."""
    forget = {r["index"]: r for r in rows if r["split"] == "forget"}
    holdout: dict[int, dict] = {}
    for name, v in doc.items():
        if not (name.startswith("mia_") and isinstance(v, dict) and isinstance(v.get("forget"), dict)):
            continue
        for side, target in (("forget", forget), ("holdout", holdout)):
            for idx, s in ((v.get(side) or {}).get("value_by_index") or {}).items():
                row = target.get(int(idx))
                if row is None and side == "holdout":
                    row = holdout.setdefault(int(idx), {"split": "holdout", "index": int(idx)})
                if row is not None and s and s.get("score") is not None:
                    row[name] = float(s["score"])
    return rows + [holdout[i] for i in sorted(holdout)]


def _ou_summary(doc: dict) -> dict:
    """Every aggregate open-unlearning wrote (``agg_value`` per metric), as it wrote it."""
    return {k: v.get("agg_value") for k, v in doc.items() if isinstance(v, dict) and "agg_value" in v}


def _flat(x):
    for v in x:
        if isinstance(v, list):
            yield from _flat(v)
        else:
            yield v


# -- shared -------------------------------------------------------------------------------------
def _ingest(args, fmt: str, to_rows) -> Path:
    out = Path(args.output)
    if out.suffix != ".json":
        raise UserError(f"output must be a .json file, got {out}")
    model_doc = read_json(args.model_logs, "model logs")
    rows = to_rows(model_doc, args.model_logs)
    retain_rows = None
    if args.retain_logs:
        retain_rows = to_rows(read_json(args.retain_logs, "retain logs"), args.retain_logs)
    n_forget = sum(r["split"] == "forget" for r in rows)
    task_name = args.task or _FORGET_SIZE_TO_TASK.get(n_forget)
    if task_name is None:
        raise UserError(f"cannot tell the TOFU split from {n_forget} forget questions; pass --task tofu/forgetXX")
    task = get_task(task_name)
    if task.protocol != "tofu":
        raise UserError(f"task {task_name} is not a TOFU task")
    if fmt == "open-unlearning":  # its numbers follow its own scoring profile (PrivLeak default reference ...)
        from unlearnbench.profiles import apply_options

        task = apply_options(task, profile="open-unlearning")
    protocol = get_protocol(task)
    stem = out.name[: -len(".json")]
    references, payload = [], None
    if retain_rows is not None:
        payload = protocol.reference_payload(task, retain_rows)
        if len(payload["forget_truth_ratio"]) != n_forget:
            raise UserError(f"retain logs have {len(payload['forget_truth_ratio'])} forget questions, model logs {n_forget}")
        info = write_reference(out.with_name(f"{stem}.reference.json"), task,
                               {"name": Path(args.retain_logs).stem, "source": str(args.retain_logs),
                                "format": f"{fmt}-logs", "weights_sha256": None}, payload)
        references.append({"role": "retain", "path": Path(info["path"]).name, "sha256": info["sha256"]})
    metrics = protocol.aggregate(task, rows, payload)
    samples_text = jsonl_text(rows)
    samples_name = f"{stem}.samples.jsonl"
    result = {
        "schema": RESULT_SCHEMA,
        "unlearnbench_version": __version__,
        "created": utc_now(),
        "task": task_block(task, None),
        "model": {"name": args.label or Path(args.model_logs).stem, "source": str(args.model_logs),
                  "format": f"{fmt}-logs", "weights_sha256": None},
        "method": None,
        "seed": 0,
        "label": args.label or Path(args.model_logs).stem,
        "metrics": metrics,
        "references": references,
        "environment": environment(),
        "timings": {},
        "ingested": {"format": fmt, "model_logs_sha256": sha256_file(args.model_logs),
                     **({"metrics": _ou_summary(model_doc)} if fmt == "open-unlearning" else {}),
                     "retain_logs_sha256": sha256_file(args.retain_logs) if args.retain_logs else None},
        "per_sample": {"path": samples_name, "sha256": sha256_bytes(samples_text.encode()), "rows": len(rows)},
    }
    from unlearnbench.results import atomic_write_text

    atomic_write_text(out.with_name(samples_name), samples_text)
    return atomic_write_json(out, result)


def ingest_tofu_legacy(args) -> Path:
    return _ingest(args, "tofu-legacy", legacy_rows)


def ingest_open_unlearning(args) -> Path:
    return _ingest(args, "open-unlearning", open_unlearning_rows)


INGESTERS.register("tofu-legacy", ingest_tofu_legacy, description="locuslab/tofu eval_log_aggregated.json")
INGESTERS.register("open-unlearning", ingest_open_unlearning, description="locuslab/open-unlearning TOFU_EVAL.json")
