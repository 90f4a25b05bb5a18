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
    if origin is typing.Union or str(origin) == "types.UnionType":
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
        if typ in (int, float, str):
            return typ(float(value)) if typ is int and "e" in value.lower() else typ(value)
        return json.loads(value)
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
    ``key=value`` overrides (types follow the dataclass fields)."""
    if isinstance(overrides, list):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise UserError(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            pairs[k.strip()] = v.strip()
        overrides = pairs
    overrides = {**task_defaults(task, method), **(overrides or {})}
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
    return method.Config(**values)


def unlearn(task_name: str, method_name: str, *, model: str = "world:target", overrides=None, seed: int = 0,
            progress: bool = True, loaded_model: Any = None, **model_opts: Any):
    """Unlearn; return ``(model, record)`` where ``record`` is the unlearn_config.json content."""
    from unlearnbench import __version__
    from unlearnbench.results import canonical_json_hash, package_versions, utc_now
    from unlearnbench.runner import get_protocol, get_task, load_model
    from unlearnbench.seeding import seed_everything

    task = get_task(task_name)
    method = get_method(method_name, task.modality)
    config = make_config(method, overrides, task)
    protocol = get_protocol(task)
    data = protocol.training_data(task)
    seed_everything(seed)
    base = loaded_model if loaded_model is not None else load_model(task, model, **model_opts)
    base_info = base.describe()
    from unlearnbench.threads import thread_policy

    t0 = time.perf_counter()
    with thread_policy(base):
        out = method.unlearn(base, task, config, data=data, progress=progress)
    seconds = time.perf_counter() - t0
    record = {
        "method": method.name,
        "modality": task.modality,
        "config": dataclasses.asdict(config),
        "base_model": base_info,
        "task": {"name": task.name, "version": task.version},
        "forget_set_sha256": canonical_json_hash(data.get("forget_id", data.get("forget"))) if isinstance(data, dict) else None,
        "seed": seed,
        "unlearn_seconds": seconds,
        "created": utc_now(),
        "versions": {"unlearnbench": __version__, **package_versions()},
    }
    return out, record


def save_unlearned(model: Any, record: dict, out_dir: str | Path) -> Path:
    from unlearnbench.results import atomic_write_json

    out = Path(out_dir)
    model.save(out)
    atomic_write_json(out / "unlearn_config.json", record)
    return out


def unlearn_cli(args, score_after: bool) -> int:
    from unlearnbench.display import print_result
    from unlearnbench.results import slug
    from unlearnbench.runner import get_task, score

    task = get_task(args.task)
    opts = {k: getattr(args, k) for k in ("batch_size", "device", "dtype", "template") if getattr(args, k, None) is not None}
    model, record = unlearn(args.task, args.method, model=args.model, overrides=args.overrides, seed=args.seed,
                            progress=not args.quiet, **opts)
    out = Path(args.output or f"runs/{slug(task.name)}__{slug(args.method)}__s{args.seed}")
    ckpt = save_unlearned(model, record, out / "checkpoint" if score_after else out)
    print(f"wrote unlearned checkpoint {ckpt} ({record['unlearn_seconds']:.1f} s)")
    if not score_after:
        return 0
    reference = args.reference
    if reference is None and task.world:
        from unlearnbench.registry import WORLDS

        reference = WORLDS.get(task.world).reference(task)
    scored = score(args.task, str(ckpt), reference=reference, out_dir=out, seed=args.seed,
                   label=args.label or args.method, method={"name": record["method"], "config": record["config"]},
                   model=model, progress=not args.quiet, timings={"unlearn_s": record["unlearn_seconds"]})
    print_result(scored.result)
    print(f"wrote {scored.path}")
    return 0
