"""What a leaderboard says about each entry and metric: model cards, metric cards, file links.

* The **model card** of an entry: the model as its adapter described it (name, source, format,
  architecture, parameters, template, world role), the weights sha256 of every seed's model,
  the method with its full configuration, and the seeds.
* The **metric card** of a metric: the registered description and the metric function's
  docstring (formula, inputs, outputs, source, limitations), with how it is judged.
* **Files** of a result: the result, its per-sample rows, its reference artefacts and its
  attachments (contact sheets, images, logs), as paths relative to the leaderboard's folder,
  so a folder holding both can be moved or served as it is.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

MODEL_KEYS = ("name", "source", "format", "kind", "architecture", "pipeline_class", "parameters", "swaps",
              "world_role", "device", "dtype")


def metric_card(name: str) -> str:
    """The metric card text of ``name`` (a registered metric or a ``<split>/<metric>`` key)."""
    from unlearnbench.registry import METRICS

    base = name.rsplit("/", 1)[-1]
    if base not in METRICS:
        return ""
    info = METRICS.get(base)
    desc = (METRICS.meta(base).get("description") or "").strip()
    doc = (inspect.getdoc(getattr(info, "fn", info)) or "").strip()
    same = doc.splitlines()[0].rstrip(".") == desc.rstrip(".") if doc else True
    text = doc if same and doc else (f"{desc}\n\n{doc}" if doc else desc)
    split = f"Reported on the {name.rsplit('/', 1)[0]} split.\n\n" if "/" in name else ""
    return (split + text).strip()


def model_card(runs: list[tuple[str, dict]]) -> dict:
    """Model card of an entry from its results (one per seed, sorted by seed)."""
    first = runs[0][1]
    model = first.get("model") or {}
    template = model.get("template")
    return {
        "model": {k: model[k] for k in MODEL_KEYS if model.get(k) is not None},
        "template": template.get("name") if isinstance(template, dict) else template,
        "weights_sha256": [(d.get("model") or {}).get("weights_sha256") for _, d in runs],
        "method": (first.get("method") or {}).get("name"),
        "config": (first.get("method") or {}).get("config"),
        "seeds": [d["seed"] for _, d in runs],
    }


def _rel(path: Path, base: Path) -> str:
    return PurePosixPath(Path(os.path.relpath(path, base))).as_posix()


def _recorded(folder: Path, rel: str) -> Path:
    is_abs = PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute()
    return Path(rel) if is_abs else (folder / rel).resolve()


def result_files(path: str, doc: dict, base: Path) -> dict:
    """The result's files as paths relative to ``base`` (the leaderboard's folder)."""
    p = Path(path).resolve()
    folder = p.parent
    ps = doc.get("per_sample")
    return {
        "result": _rel(p, base),
        "samples": _rel(_recorded(folder, ps["path"]), base) if ps else None,
        "references": [{"role": r["role"], "path": _rel(_recorded(folder, r["path"]), base), "sha256": r["sha256"]}
                       for r in doc.get("references") or []],
        "attachments": [{"role": a["role"], "path": _rel(_recorded(folder, a["path"]), base), "sha256": a.get("sha256")}
                        for a in doc.get("attachments") or []],
    }


def provenance(path: str, doc: dict, base: Path) -> dict:
    """One seed's result: file links, identity and where it ran."""
    from unlearnbench.results import sha256_file

    env = doc.get("environment") or {}
    return {
        "path": _rel(Path(path).resolve(), base), "sha256": sha256_file(path), "seed": doc["seed"],
        "run_id": doc.get("run_id"), "weights_sha256": (doc.get("model") or {}).get("weights_sha256"),
        "unlearnbench_version": doc.get("unlearnbench_version"), "commit": env.get("unlearnbench_commit"),
        "created": doc.get("created"), "files": result_files(path, doc, base),
        "hardware": {k: env.get(k) for k in ("device", "dtype", "platform", "machine", "cpu_count")},
    }
