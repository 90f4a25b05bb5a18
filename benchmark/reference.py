"""Reference artefacts: content-addressed files a protocol compares against.

A reference is built by a command (``unlearnbench reference build``) from a reference model
(TOFU's retain model, MUSE's retrained model, a classifier's exact Retrain). Its sha256 is
recorded in every result that used it; it is never downloaded or recomputed silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from unlearnbench.errors import UserError
from unlearnbench.results import REFERENCE_SCHEMA, atomic_write_json, read_json, sha256_file, utc_now
from unlearnbench.spec import TaskSpec


#: task settings that do not change how a model is scored (the methods' defaults)
NOT_SCORING = ("method_defaults",)


def settings_hash(task: TaskSpec, legacy: bool = False) -> str:
    """Hash of the task's scoring settings (profile, template, lengths ...): a reference is only
    comparable with runs scored the same way. Settings that do not touch scoring
    (:data:`NOT_SCORING`) are left out, so new method defaults keep the references valid;
    ``legacy=True`` gives the earlier hash over every setting (still accepted when loading)."""
    from unlearnbench.results import canonical_json_hash

    settings = task.to_dict()["settings"]
    if not legacy:
        settings = {k: v for k, v in settings.items() if k not in NOT_SCORING}
    return canonical_json_hash(settings)


def cache_name(task: TaskSpec) -> str:
    """File name of a world's cached reference for ``task``: task, version and scoring-settings
    hash, so a changed scoring setting builds a new one instead of failing to load the old."""
    return f"{task.name.replace('/', '__')}-v{task.version}-{settings_hash(task)[:12]}.json"


def write_reference(path: str | os.PathLike, task: TaskSpec, model_info: dict, payload: dict, role: str = "retain") -> dict:
    doc = {
        "schema": REFERENCE_SCHEMA,
        "role": role,
        "task": {"name": task.name, "version": task.version, "profile": task.settings.get("profile", "default"),
                 "settings_sha256": settings_hash(task)},
        "model": model_info,
        "created": utc_now(),
        "payload": payload,
    }
    p = atomic_write_json(path, doc)
    return {"role": role, "path": str(p), "sha256": sha256_file(p)}


def load_reference(path: str | os.PathLike, task: TaskSpec) -> tuple[dict, dict]:
    """Return ``(payload, info)``; ``info`` = ``{role, path, sha256}`` for the result file."""
    doc = read_json(path, "reference file")
    if not isinstance(doc, dict) or doc.get("schema") != REFERENCE_SCHEMA:
        raise UserError(f"not an {REFERENCE_SCHEMA} file: {path}")
    t = doc.get("task") or {}
    if t.get("name") != task.name:
        raise UserError(f"reference {path} was built for task {t.get('name')!r}, not {task.name!r}")
    if t.get("version") != task.version:
        raise UserError(f"reference {path} is for {task.name} version {t.get('version')}, task is version {task.version}")
    if t.get("settings_sha256") not in (None, settings_hash(task), settings_hash(task, legacy=True)):
        raise UserError(f"reference {path} was built with other scoring settings (profile {t.get('profile')!r}); "
                        f"rebuild it with the same --profile and options as this run")
    info = {"role": doc.get("role", "retain"), "path": str(Path(path)), "sha256": sha256_file(path)}
    return doc["payload"], info
