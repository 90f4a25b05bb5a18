"""The manifest of an unlearned checkpoint, and checkpoint folders that are never half-written.

``unlearnbench unlearn`` / ``run`` save the unlearned model to a folder of its own
(``<out>/<task>__<label>__s<seed>.checkpoint``, named like the run's result files) with
``unlearn_config.json`` inside it, beside the weights (as diffusers keeps a pipeline's
configuration with it). The manifest records the method and its full config, the base model
with its weights sha256, the task (name, version, spec hash), the forget set's hash, the
seed, the package versions and the command line, plus the sha256 of the saved weights as a
later ``score`` computes it; ``unlearn.log`` beside it is the command's run log up to the save. ``score`` reads it, so a result of a checkpoint made by this
suite names its method and config (:func:`method_block`) whichever command scored it.

A folder is written under a temporary name and renamed into place, so a crash leaves no
partial checkpoint; an existing non-empty folder is replaced only with ``overwrite``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError

MANIFEST = "unlearn_config.json"
LOG = "unlearn.log"
SCHEMA = "unlearnbench/unlearn-manifest/v1"
_BASE_KEYS = ("name", "source", "format", "architecture", "weights_sha256")


def manifest_record(*, method: str, modality: str, config: dict, base_model: dict, task: Any, forget_sha256: str | None,
                    seed: int, seconds: float) -> dict:
    """The manifest's content, before the weights are saved (``weights_sha256`` added by :func:`save_checkpoint`)."""
    from unlearnbench import __version__
    from unlearnbench.results import package_versions, utc_now

    return {
        "schema": SCHEMA, "method": method, "modality": modality, "config": config,
        "base_model": {k: base_model.get(k) for k in _BASE_KEYS if k in base_model},
        "task": {"name": task.name, "version": task.version, "spec_sha256": task.spec_hash()},
        "forget_set_sha256": forget_sha256, "seed": seed, "unlearn_seconds": seconds, "created": utc_now(),
        "versions": {"unlearnbench": __version__, **package_versions()},
        "command": _command(),
    }


def _command() -> list[str] | None:
    """The command line of the ``unlearnbench`` command running (None from the Python API)."""
    from unlearnbench.run_log import current

    log = current()
    if log is not None and log.argv is not None:
        return ["unlearnbench", *log.argv]
    return sys.argv[:] if sys.argv and sys.argv[0].endswith("unlearnbench") else None


def method_block(record: dict, manifest_sha256: str | None = None) -> dict:
    """The result's ``method`` entry for a checkpoint described by ``record`` (a manifest)."""
    block = {"name": record["method"], "config": record.get("config"), "seed": record.get("seed"),
             "base_model": record.get("base_model"), "task": record.get("task")}
    if manifest_sha256:
        block["manifest_sha256"] = manifest_sha256
    return block


def read_manifest(checkpoint: str | os.PathLike) -> tuple[dict, str] | None:
    """``(manifest, sha256)`` when ``checkpoint`` is a folder holding one, else None."""
    from unlearnbench.results import read_json, sha256_file

    path = Path(str(checkpoint)) / MANIFEST
    if not path.is_file():
        return None
    doc = read_json(path, "unlearn manifest")
    if not isinstance(doc, dict) or not isinstance(doc.get("method"), str) or not isinstance(doc.get("config"), (dict, type(None))):
        raise UserError(f"{path} is not a manifest written by `unlearnbench unlearn` (needs 'method' and 'config')")
    return doc, sha256_file(path)


def _saved_weights_sha256(model: Any, folder: Path) -> str | None:
    """The weights hash ``score FOLDER`` will record: a CausalLM hashes its weight files on load,
    so it is told that hash; other adapters hash their tensors the same way in memory and on load."""
    if hasattr(model, "_weights_hash"):
        from unlearnbench.results import weights_sha256

        model._weights_hash = weights_sha256(folder)
    return model.describe().get("weights_sha256")


def save_checkpoint(model: Any, record: dict, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save ``model`` and its manifest to ``folder`` atomically; refuse a non-empty folder unless ``overwrite``."""
    from unlearnbench.preflight import check_folder_free
    from unlearnbench.results import atomic_write_json

    final = check_folder_free(folder, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save(tmp)
        record["weights_sha256"] = _saved_weights_sha256(model, tmp)
        from unlearnbench.run_log import current

        if current() is not None:  # the command's log so far (versions, timings, warnings) travels with it
            (tmp / LOG).write_text(current().text(), encoding="utf-8")
            record["log"] = LOG
        atomic_write_json(tmp / MANIFEST, record)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if hasattr(model, "source"):
        model.source = str(final)
    return final


def check_manifest_weights(manifest: dict | None, model: Any) -> None:
    """Warn when the loaded weights are not the ones the manifest was written for (edited after
    unlearning, or loaded in another dtype); the method is still recorded from the manifest."""
    want = (manifest or {}).get("weights_sha256")
    if not want:
        return
    got = model.describe().get("weights_sha256")
    if got != want:
        from unlearnbench.run_log import warn

        warn(f"the weights scored (sha256 {str(got)[:12]}) are not those `unlearnbench unlearn` saved with this "
             f"manifest (sha256 {want[:12]}): edited since, or loaded in another dtype")
