"""The runner: load -> (unlearn) -> infer once -> aggregate -> write, as separate steps.

``score`` is what ``unlearnbench score`` calls. Every step is a plain function so tables,
the demo and tests reuse them without going through the CLI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench import __version__, distributed
from unlearnbench.catalog import load_all
from unlearnbench.errors import UserError
from unlearnbench.reference import load_reference, write_reference
from unlearnbench.registry import MODEL_LOADERS, PROTOCOLS, TASKS, WORLDS
from unlearnbench.results import (
    RESULT_SCHEMA, environment, result_stem, run_id, utc_now, write_result,
)
from unlearnbench.seeding import seed_everything
from unlearnbench.spec import TaskSpec
from unlearnbench.manifest import check_manifest_weights
from unlearnbench.preflight import (
    before_scoring, check_checkpoint, check_model_opts, check_output_file, check_reference_role, check_seed,
    check_task_data,
)
from unlearnbench.run_log import ensure_log, note
from unlearnbench.threads import thread_policy


@dataclass
class Scored:
    """What one scoring run produced (the result dict is exactly what is written)."""

    result: dict
    rows: list[dict]
    path: Path | None = None
    model: Any = field(default=None, repr=False)


def get_task(name: str | TaskSpec) -> TaskSpec:
    if isinstance(name, TaskSpec):
        return name
    load_all()
    task = TASKS.get(name)
    if not isinstance(task, TaskSpec):  # lazy entries may hold a factory
        task = task() if callable(task) else task
    return task


def get_protocol(task: TaskSpec):
    proto = PROTOCOLS.get(task.protocol)
    return proto() if isinstance(proto, type) else proto


def resolve_checkpoint(task: TaskSpec, checkpoint: str) -> str:
    """``world:<role>`` names a model of the task's embedded world (built on first use)."""
    if checkpoint.startswith("world:"):
        if not task.world:
            raise UserError(f"task {task.name} has no embedded world, so {checkpoint!r} means nothing")
        world = WORLDS.get(task.world)
        path = str(world.checkpoint(task, checkpoint.split(":", 1)[1]))  # built on first use
        note(f"{checkpoint} of {task.name} is {path}")
        return path
    return checkpoint


def load_model(task: TaskSpec, checkpoint: str, **opts: Any):
    load_all()
    loader = MODEL_LOADERS.get(task.modality)
    with distributed.main_first():  # one process builds a world model, the others read it
        path = resolve_checkpoint(task, checkpoint)
    return loader(path, task=task, **opts)


def task_block(task: TaskSpec, data_hash: str | None, data_dir: dict | None = None) -> dict:
    """The result's ``task`` block: identity, hashes and the effective scoring settings
    (profile, limit and every setting, so ``leaderboard verify`` can rebuild the spec)."""
    block = {"name": task.name, "version": task.version, "modality": task.modality,
             "spec_sha256": task.spec_hash(), "data_sha256": data_hash,
             "profile": task.settings.get("profile", "default"), "limit": task.settings.get("limit"),
             "settings": task.to_dict()["settings"], **({"data_dir": data_dir} if data_dir else {})}
    if task.world:  # an embedded world's data and models depend on its scale (leaderboards never pool two)
        from unlearnbench.cache import scale

        block["scale"] = scale()
    return block


def task_from_block(block: dict) -> TaskSpec:
    """The task a result was scored with: the registered task with the recorded settings."""
    task = get_task(block["name"])
    if isinstance(block.get("settings"), dict) and block["settings"] != task.to_dict()["settings"]:
        task = task.replace(settings=block["settings"])
    return task


def prepare_task(task_name: str | TaskSpec, options: dict | None = None) -> TaskSpec:
    """The task with a scoring profile and options (``--profile``, ``--limit`` ...) applied."""
    from unlearnbench.profiles import apply_options

    task = get_task(task_name)
    return apply_options(task, **{k: v for k, v in (options or {}).items() if v is not None})


def score(
    task_name: str,
    checkpoint: str,
    *,
    reference: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    label: str | None = None,
    method: dict | None = None,
    model: Any = None,
    progress: bool = True,
    timings: dict | None = None,
    overwrite: bool = True,
    options: dict | None = None,
    data: list[str] | None = None,
    compute: dict | None = None,
    save_images: bool = False,
    **model_opts: Any,
) -> Scored:
    """Score ``checkpoint`` on ``task_name``; write the result when ``out_dir`` is given.

    ``method`` is ``{"name": ..., "config": {...}}`` for a checkpoint this suite unlearned
    (read from the checkpoint's ``unlearn_config.json`` when not given), ``None`` for an
    external one. A ``model`` already loaded can be passed to skip loading. ``options``:
    scoring profile and options (``profile``, ``system_prompt``, ``max_new_tokens``, ``limit``;
    :func:`unlearnbench.profiles.apply_options`); ``data``: ``--data`` folders
    (:mod:`unlearnbench.local_data`). Every input is checked, and the data read, before the
    model loads (:func:`unlearnbench.preflight.before_scoring`); with ``overwrite=False`` an
    existing result is refused up front. The result lists its run log (``<stem>.log``) in
    ``attachments``, and the protocol's files for people (a diffusion run's contact sheet;
    with ``save_images`` every generated image). Under ``accelerate launch`` every process
    scores its share of the samples (:mod:`unlearnbench.distributed`) and gets every row back;
    only the main process writes, the result's ``compute`` block (plus the given ``compute``
    entries) records the number of processes, the device, dtype and batch.
    """
    if save_images and out_dir is None:
        raise UserError("--save-images needs -o DIR: the images are written beside the result")
    with ensure_log():
        return _score(task_name, checkpoint, reference=reference, out_dir=out_dir, seed=seed, label=label,
                      method=method, model=model, progress=progress, timings=timings, overwrite=overwrite,
                      options=options, data=data, compute=compute, model_opts=model_opts,
                      save_images=save_images)


def _score(task_name, checkpoint, *, reference, out_dir, seed, label, method, model, progress, timings, overwrite,
           options, data, compute, model_opts, save_images=False) -> Scored:
    from unlearnbench import local_data

    t0 = time.perf_counter()
    task = prepare_task(task_name, options)
    protocol = get_protocol(task)
    copies = local_data.parse(data)
    with local_data.using(task, copies):
        seed, label, method, manifest = before_scoring(task, checkpoint, out_dir=out_dir, seed=seed, label=label,
                                                       method=method, model=model, reference=reference,
                                                       overwrite=overwrite, model_opts=model_opts)
        ref_payload, ref_infos = None, []
        if reference is not None:  # check the reference before any expensive work
            ref_payload, info = load_reference(reference, task)
            ref_infos.append(info)
        with distributed.main_first():  # one process fills a data cache, the others read it
            data_hash = protocol.data_hash(task)  # loads and checks every split before the model loads
        protocol.preflight(task)  # the task's judges (diffusion), before the model loads
        seed_everything(seed)
        if model is None:
            model = load_model(task, checkpoint, **model_opts)
        check_manifest_weights(manifest, model)
        t_load = time.perf_counter()
        note(f"loaded {checkpoint} in {t_load - t0:.1f} s")
        with thread_policy(model) as n_threads:
            rows = protocol.infer(task, model, progress=progress)
    t_infer = time.perf_counter()
    note(f"inferred {len(rows)} per-sample rows of {task.name} in {t_infer - t_load:.1f} s on {n_threads} torch thread(s)")
    metrics = protocol.aggregate(task, rows, ref_payload)
    t_metrics = time.perf_counter()
    times = dict(timings or {})
    times.update({"load_s": t_load - t0, "infer_s": t_infer - t_load, "metrics_s": t_metrics - t_infer})
    times["total_s"] = sum(v for k, v in times.items() if k.endswith("_s") and k != "total_s")
    result = {
        "schema": RESULT_SCHEMA,
        "unlearnbench_version": __version__,
        "created": utc_now(),
        "task": task_block(task, data_hash, local_data.describe(copies)),
        "model": model.describe(),
        "method": method,
        "seed": seed,
        "label": label,
        "metrics": metrics,
        "references": ref_infos,
        "environment": environment(getattr(model, "device_name", None), getattr(model, "dtype_name", None)),
        "timings": times,
        "compute": {**distributed.compute_block(model, batch_source=getattr(model, "batch_size_source", None)),
                    **(compute or {})},
    }
    if checkpoint.startswith("world:"):  # a world's own model (target, retain, ...): a reference row in tables
        result["model"]["world_role"] = checkpoint.split(":", 1)[1]
    result["run_id"] = run_id(result)
    scored = Scored(result, rows, model=model)
    if out_dir is not None:
        stem = result_stem(task.name, label, seed)
        if distributed.is_main():  # one result file, whatever the number of processes
            result["references"] = [_bundle_reference(info, out_dir) for info in ref_infos]
            result["attachments"] = protocol.write_attachments(task, rows, out_dir, stem, save_images=save_images)
            scored.path = write_result(out_dir, result, rows, stem, overwrite=overwrite)
        else:
            scored.path = Path(out_dir) / f"{stem}.result.json"
        distributed.barrier()
    return scored


def _bundle_reference(info: dict, out_dir) -> dict:
    """Copy a reference artefact beside the result (content-addressed name), so a result folder
    is self-contained and its paths never leave it; the sha256 is unchanged."""
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"reference-{info['role']}-{info['sha256'][:16]}.json"
    dest = out / name
    if not dest.exists():
        tmp = out / f".{name}.tmp"
        shutil.copyfile(info["path"], tmp)
        os.replace(tmp, dest)
    return {**info, "path": name, "source": str(info["path"])}


def build_reference(task_name: str, checkpoint: str, out_file: str | os.PathLike, *, seed: int = 0,
                    progress: bool = True, role: str | None = None, overwrite: bool = True,
                    options: dict | None = None, data: list[str] | None = None, **model_opts: Any) -> dict:
    """Run the reference model once and write its per-sample statistics as an artefact.

    ``role`` must be one the task uses (``task.references``; default: its first); every
    input is checked, and the data read, before loading; an existing ``out_file`` is refused
    unless ``overwrite``. ``options`` / ``data`` as for :func:`score`.
    """
    from unlearnbench import local_data

    task = prepare_task(task_name, options)
    protocol = get_protocol(task)
    role = check_reference_role(task, role)
    check_output_file(out_file, overwrite, "reference file")
    check_model_opts(task, model_opts)
    check_checkpoint(task, checkpoint)
    with local_data.using(task, local_data.parse(data)):
        check_task_data(task)
        protocol.data_hash(task)  # the data is checked before the model loads
        protocol.preflight(task)
        seed_everything(check_seed(seed))
        model = load_model(task, checkpoint, **model_opts)
        with thread_policy(model):
            rows = protocol.infer(task, model, progress=progress)
    payload = protocol.reference_payload(task, rows)
    if not distributed.is_main():  # under accelerate launch the main process writes the one file
        distributed.barrier()
        return {"path": str(out_file), "sha256": None, "written_by": "the main process"}
    info = write_reference(out_file, task, model.describe(), payload, role=role)
    distributed.barrier()
    return info
