"""Unlearning methods: the contract, the registry helpers and the unlearn/run commands.

A method is a class registered per modality with :func:`register_method`. It has a
``Config`` dataclass holding the method's published defaults (each field commented with its
source) and ``unlearn(model, task, config, data, progress) -> model`` that returns the
unlearned model adapter. ``data`` is what the task's protocol gives for training
(``protocol.training_data(task)``: forget / retain sets in the modality's form). Each
modality has exactly one shared training loop that methods call; a method file holds its
loss, not a loop.

The same short name can exist for several modalities (``ga`` for LLMs and classifiers), so
entries are keyed ``modality:name`` and looked up with the task's modality.
"""

from __future__ import annotations

import dataclasses
import json
import time
import types
import typing
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError
from unlearnbench.registry import METHODS


def register_method(name: str, modality: str, target: Any, **meta: Any) -> None:
    """Register ``target`` (a class or a lazy ``"module:Class"``) as method ``name`` for ``modality``."""
    METHODS.register(f"{modality}:{name}", target, name=name, modality=modality, **meta)


def get_method(name: str, modality: str):
    from unlearnbench.catalog import load_all

    load_all()
    key = f"{modality}:{name}"
    if key not in METHODS:
        import difflib

        names = [METHODS.meta(k)["name"] for k in METHODS.names() if k.startswith(modality + ":")]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        other = [METHODS.meta(k)["modality"] for k in METHODS.names() if k.endswith(":" + name)]
        also = f" (it exists for modality {', '.join(other)})" if other else ""
        raise UserError(f"unknown {modality} method {name!r}{also}{hint} (see `unlearnbench methods`)")
    cls = METHODS.get(key)
    return cls() if isinstance(cls, type) else cls


def _coerce(value: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union or origin is types.UnionType:  # Optional[int], int | None
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value.lower() in ("none", "null"):
            return None
        typ = args[0] if args else str
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            f = float(value)  # "1e3" is 1000; "2.5" is not an int
            if not f.is_integer():
                raise ValueError(value)
            return int(value) if value.strip().lstrip("+-").isdigit() else int(f)
        if typ in (float, str):
            return typ(value)
        parsed = json.loads(value)
        want = typing.get_origin(typ) or typ  # dict[str, float] -> dict
        if want in (dict, list) and not isinstance(parsed, want):
            raise ValueError(value)
        return parsed
    except (ValueError, json.JSONDecodeError):
        raise UserError(f"--set {key}={value}: expected a value of type {getattr(typ, '__name__', typ)}") from None


def task_defaults(task: Any, method: Any) -> dict:
    """The task's own defaults for ``method`` (``settings["method_defaults"][name]``), or ``{}``.

    A method's ``Config`` holds its paper's defaults where they transfer; an embedded world's
    tiny models need other learning rates, steering coefficients or epochs, and its tasks say
    so here (tuned once, documented in the task). ``--set`` overrides both.
    """
    if task is None:
        return {}
    return dict((task.settings.get("method_defaults") or {}).get(method.name, {}))


def make_config(method: Any, overrides: dict[str, str] | list[str] | None = None, task: Any = None):
    """Build ``method.Config``: its defaults, then ``task``'s (:func:`task_defaults`), then the
    ``key=value`` overrides (types follow the dataclass fields), then check every value's
    range (:mod:`unlearnbench.config_checks`) before any data or model is loaded."""
    given = "--set" if isinstance(overrides, list) else "the given config"
    if isinstance(overrides, list):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise UserError(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            pairs[k.strip()] = v.strip()
        overrides = pairs
    defaults = task_defaults(task, method)
    sources = {k: "the task's method_defaults" for k in defaults}
    sources.update({k: given for k in overrides or {}})
    overrides = {**defaults, **(overrides or {})}
    hints = typing.get_type_hints(method.Config)
    fields = {f.name for f in dataclasses.fields(method.Config)}
    values = {}
    for k, v in overrides.items():
        if k not in fields:
            import difflib

            close = difflib.get_close_matches(k, sorted(fields), n=2)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; fields: {', '.join(sorted(fields))}"
            raise UserError(f"method {method.name} has no config field {k!r}{hint}")
        values[k] = _coerce(v, hints[k], k) if isinstance(v, str) else v
    config = method.Config(**values)
    from unlearnbench.config_checks import check_config

    check_config(f"method {method.name}", config, sources)
    return config


def unlearn(task_name: str, method_name: str, *, model: str = "world:target", overrides=None, seed: int = 0,
            progress: bool = True, loaded_model: Any = None, **model_opts: Any):
    """Unlearn; return ``(model, record)`` where ``record`` is the manifest
    (:func:`unlearnbench.manifest.manifest_record`, saved as ``unlearn_config.json``)."""
    from unlearnbench.manifest import manifest_record
    from unlearnbench.results import canonical_json_hash
    from unlearnbench.run_log import note
    from unlearnbench.runner import get_protocol, get_task, load_model
    from unlearnbench.seeding import seed_everything
    from unlearnbench.threads import thread_policy

    from unlearnbench.preflight import check_seed

    seed = check_seed(seed)
    task = get_task(task_name)
    method = get_method(method_name, task.modality)
    config = make_config(method, overrides, task)
    protocol = get_protocol(task)
    from unlearnbench import distributed

    with distributed.main_first():  # under accelerate launch one process fills a data cache, the others read it
        data = protocol.training_data(task)
    seed_everything(seed)
    base = loaded_model if loaded_model is not None else load_model(task, model, **model_opts)
    base_info = base.describe()
    note(f"unlearning {task.name} with {method.name} from {base_info.get('source') or model}")
    t0 = time.perf_counter()
    with thread_policy(base) as n_threads:
        try:
            out = method.unlearn(base, task, config, data=data, progress=progress)
        except FloatingPointError as e:  # diverged: a user setting (lr too high ...), not a bug
            raise UserError(f"{method.name} diverged: {e} (lower --set lr=...)") from None
    seconds = time.perf_counter() - t0
    note(f"unlearned in {seconds:.1f} s on {n_threads} torch thread(s)")
    forget = canonical_json_hash(data.get("forget_id", data.get("forget"))) if isinstance(data, dict) else None
    record = manifest_record(method=method.name, modality=task.modality, config=dataclasses.asdict(config),
                             base_model=base_info, task=task, forget_sha256=forget, seed=seed, seconds=seconds)
    history = getattr(out, "train_history", None)  # the LLM loop's per-step log
    record["steps"] = len(history) if history else None
    record["torch_threads"] = n_threads
    record["compute"] = unlearn_compute(config, data_parallel=task.modality == "llm")
    return out, record


def unlearn_compute(config: Any, data_parallel: bool = True) -> dict:
    """Processes and training batch of an unlearning run (the result's ``compute.unlearn``).

    Only the LLM loop is data parallel under ``accelerate launch``; the classifier and diffusion
    loops train the whole model in every process (the same seed gives the same weights), so their
    unlearning counts as one process."""
    from unlearnbench import distributed

    n = distributed.world_size() if data_parallel else 1
    per, accum = getattr(config, "batch_size", None), getattr(config, "grad_accum", 1) or 1
    per = per if isinstance(per, int) and not isinstance(per, bool) else None
    return {"world_size": n, "per_device_batch": per, "grad_accum": accum,
            "effective_batch": per * accum * n if per is not None else None}


def save_unlearned(model: Any, record: dict, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Save an unlearned model with its manifest to ``out_dir`` (atomic; an existing non-empty
    folder only with ``overwrite``)."""
    from unlearnbench.manifest import save_checkpoint

    return save_checkpoint(model, record, out_dir, overwrite=overwrite)


def unlearn_cli(args, score_after: bool) -> int:
    """``unlearnbench unlearn`` / ``run``: every input checked first, then one folder per run.

    The checkpoint goes to ``<-o>/<task>__<label>__s<seed>.checkpoint`` (label: ``--label`` or
    the method), beside the run's result files when scoring; nothing is replaced without
    ``--overwrite``.
    """
    from unlearnbench import preflight
    from unlearnbench.display import print_result
    from unlearnbench.manifest import method_block
    from unlearnbench.results import result_stem
    from unlearnbench.run_log import note
    from unlearnbench.runner import get_task, score

    task = get_task(args.task)
    method = get_method(args.method, task.modality)
    make_config(method, args.overrides, task)  # bad --set values fail here, before any work
    opts = {k: getattr(args, k) for k in ("batch_size", "device", "dtype", "template") if getattr(args, k, None) is not None}
    seed = 0 if args.seed is None else args.seed
    out = Path(args.output or "runs")
    stem = result_stem(task.name, args.label or method.name, seed)
    folder = out / f"{stem}.checkpoint"
    preflight.check_folder_free(folder, args.overwrite)
    if score_after:
        preflight.check_result_free(out, stem, args.overwrite)
    preflight.check_model_opts(task, opts)
    preflight.check_checkpoint(task, args.model)
    preflight.check_reference(args.reference)
    preflight.check_task_data(task)
    model, record = unlearn(args.task, args.method, model=args.model, overrides=args.overrides, seed=seed,
                            progress=not args.quiet, **opts)
    from unlearnbench import distributed

    if distributed.is_main():  # one checkpoint, whatever the number of processes
        ckpt = save_unlearned(model, record, folder, overwrite=args.overwrite)
        print(f"wrote unlearned checkpoint {ckpt} ({record['unlearn_seconds']:.1f} s)")
    distributed.barrier()
    ckpt = folder
    if not score_after:
        return 0
    reference = args.reference
    if reference is None and task.world:
        from unlearnbench.registry import WORLDS

        with distributed.main_first():
            reference = WORLDS.get(task.world).reference(task)  # built on first use
        note(f"reference of {task.name}: {reference}")
    from unlearnbench.manifest import MANIFEST
    from unlearnbench.results import sha256_file

    sharded = getattr(model, "sharded", False)  # FSDP / ZeRO-3 weights: score the saved checkpoint

    scored = score(args.task, str(ckpt), reference=reference, out_dir=out, seed=seed, label=args.label or method.name,
                   method=method_block(record, sha256_file(ckpt / MANIFEST)),
                   model=None if sharded else model, progress=not args.quiet,
                   timings={"unlearn_s": record["unlearn_seconds"]}, overwrite=args.overwrite,
                   compute={"unlearn": record["compute"]}, **(opts if sharded else {}))
    if distributed.is_main():
        print_result(scored.result)
        print(f"wrote {scored.path}")
    return 0
