"""Checks that run before any expensive work: outputs, option values, devices, checkpoints, data.

Each function raises one :class:`UserError` line. They only look at paths, strings and the
environment (no model is loaded, no world is built, no data is read), so a command with a
bad ``-o``, a bad ``--device`` or a missing dataset fails as soon as it starts instead of
after the run. :func:`before_scoring` runs them all for ``score``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError

SEED_MAX = 2**32 - 1  # numpy's seed range, the narrowest of random / numpy / torch


# -- option values (argparse ``type=`` functions: errors become one line through the CLI) ----
def parse_seed(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, not {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed must be in [0, {SEED_MAX}], not {text}")
    return value


def parse_batch_size(text: str) -> int | str:
    """A positive int, or ``auto`` (passed through: the loader picks the largest that fits)."""
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch size must be a positive integer or 'auto', not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be >= 1 (or 'auto'), not {value}")
    return value


def parse_positive_int(text: str) -> int:
    """An integer >= 1 (``--jobs``, ``--slurm-time``)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value}")
    return value


def check_seed(seed: Any) -> int:
    """Library form of :func:`parse_seed` (``score(seed=...)`` from Python)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"seed must be an integer in [0, {SEED_MAX}], not {seed!r}")
    return seed


# -- output paths ------------------------------------------------------------------------
def _writable_place(p: Path, cannot: str) -> None:
    """The nearest existing ancestor of ``p`` is a writable folder, else "``cannot``: why"."""
    anc = p.absolute()
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(f"{cannot}: {anc} is a file")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{cannot}: {anc} is read-only")


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` is, or can become, a writable folder (it is not created here)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p} exists and is not a folder")
    _writable_place(p, f"cannot create {what} {p}" if not p.exists() else f"{what} {p} is not writable")
    return p


def check_output_file(path: str | os.PathLike, overwrite: bool = False, what: str = "output file") -> Path:
    """``path`` can be written: not a folder, its folder writable, and not there yet unless ``overwrite``."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder; name a file")
    if p.exists() and not overwrite:
        raise UserError(f"{what} {p} exists; pass --overwrite to replace it")
    _writable_place(p.parent, f"cannot write {what} {p}")
    return p


def check_result_free(out_dir: str | os.PathLike, stem: str, overwrite: bool = False) -> Path:
    """The result ``<stem>.result.json`` can be written in ``out_dir``: not there, unless ``overwrite``
    (samples and log left by an unfinished run, without a result file, are simply replaced)."""
    out = check_output_dir(out_dir)
    f = out / f"{stem}.result.json"
    if f.exists() and not overwrite:
        raise UserError(f"{f} exists; pass --overwrite to replace it (or choose another -o, --label or --seed)")
    return out


def check_folder_free(path: str | os.PathLike, overwrite: bool = False, what: str = "checkpoint folder") -> Path:
    """A folder to be written as a whole (a checkpoint): absent or empty, unless ``overwrite``."""
    p = check_output_dir(path, what)
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise UserError(f"{what} {p} exists and is not empty; pass --overwrite to replace it")
    return p


# -- devices and model options ---------------------------------------------------------------
def check_device(device: str | None) -> None:
    if device is None:
        return
    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", device.strip())
    if not m:
        raise UserError(f"unknown device {device!r}: use cpu, cuda or cuda:N")
    import torch

    kind, index = m.group(1), m.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"--device {device}: MPS is not available on this machine (use --device cpu)")


def check_model_opts(task, opts: dict) -> None:
    """Options that only some modalities take, checked against the task before loading."""
    check_device(opts.get("device"))
    if task.modality == "classifier" and opts.get("dtype") not in (None, "float32"):
        raise UserError(f"classifier checkpoints are scored in float32; --dtype {opts['dtype']} does not apply")
    template = opts.get("template")
    if template is not None:
        if task.modality != "llm":
            raise UserError(f"--template applies to LLM tasks; {task.name} is a {task.modality} task")
        from unlearnbench.templates import get_template

        get_template(template)  # unknown names fail here, with a "did you mean"


# -- checkpoints, references and data ------------------------------------------------------
def check_checkpoint(task, checkpoint: str) -> None:
    """The checkpoint string names something loadable, without loading it."""
    if checkpoint.startswith("world:"):
        if not task.world:
            raise UserError(f"task {task.name} has no embedded world, so {checkpoint!r} means nothing")
        return
    from unlearnbench.hub import require_local_or_hub

    if task.modality == "classifier":
        if not Path(checkpoint).exists():
            raise UserError(f"classifier checkpoint not found: {checkpoint}")
        return
    if task.modality == "diffusion":
        from unlearnbench.image_generator import parse_checkpoint

        base, swaps = parse_checkpoint(checkpoint)
        require_local_or_hub(base, "diffusion pipeline")
        if (Path(base) / "model_index.json").is_file():  # its fields, before anything loads
            from unlearnbench.image_generator import check_model_index

            check_model_index(base)
        for component, path in swaps.items():
            if not Path(path).exists():
                raise UserError(f"{component} weights not found: {path}")
        return
    require_local_or_hub(checkpoint)


def check_reference(path: str | os.PathLike | None) -> None:
    if path is not None and not Path(path).is_file():
        raise UserError(f"reference file not found: {path}" if not Path(path).exists()
                        else f"reference {path} is not a file")


def check_reference_role(task, role: str | None) -> str:
    """``role`` (default: the task's first reference) is one the task's protocol uses."""
    known = tuple(task.references or ())
    if not known:
        raise UserError(f"task {task.name} uses no reference artefact, so there is nothing to build")
    if role is None:
        return known[0]
    if role not in known:
        raise UserError(f"task {task.name} uses a reference of role {', '.join(map(repr, known))}, not {role!r}")
    return role


def hub_datasets(task) -> list[str]:
    """Hub dataset ids a task reads (its hub source and ``hub:<id>:`` split prefixes)."""
    src = task.source or {}
    ids = []
    if src.get("kind") == "hub" and src.get("path") and not (src.get("env") and os.environ.get(src["env"])):
        ids.append(src["path"])
    for name in (task.splits or {}).values():
        if isinstance(name, str) and name.startswith("hub:"):
            ids.append(name.split(":", 2)[1])
    from unlearnbench.tasks.llm_data import has_local_copy

    return [i for i in dict.fromkeys(ids) if not has_local_copy(i)]  # --data copies are checked when read


def check_task_data(task) -> None:
    """The task's data is there: local folders / files exist, hub datasets are cached or reachable."""
    from unlearnbench.hub import require

    src = task.source or {}
    env = src.get("env")
    if env and os.environ.get(env) and not Path(os.environ[env]).exists():
        raise UserError(f"${env} points at {os.environ[env]}, which does not exist")
    if src.get("kind") == "local":
        given = src.get("path") or (task.settings or {}).get("csv")  # i2p: a CSV named in the settings
        if env and not os.environ.get(env) and not given:
            raise UserError(f"task {task.name} reads its data from ${env}; set it to the data file")
        if src.get("path") and not Path(src["path"]).exists():
            raise UserError(f"data of task {task.name} not found: {src['path']}")
    for repo in hub_datasets(task):
        require(repo, "dataset", f"the data of {task.name}, hub dataset")


# -- everything ``score`` needs to know before loading -------------------------------------------
def default_label(task, checkpoint: str) -> str:
    """The label of a result when none is given and no method is known: the world role
    (``world:target`` -> ``target``) or the checkpoint's file / folder name (the swapped
    component's for a diffusion ``BASE+unet=PATH``), known before anything is loaded."""
    if checkpoint.startswith("world:"):
        return checkpoint.split(":", 1)[1]
    base = checkpoint
    if task.modality == "diffusion" and "+" in checkpoint and not Path(checkpoint).exists():
        from unlearnbench.image_generator import parse_checkpoint

        base, swaps = parse_checkpoint(checkpoint)
        base = list(swaps.values())[-1] if swaps else base
    name = Path(base.rstrip("/")).name or base
    for suffix in (".safetensors", ".gguf", ".pt", ".pth", ".bin", ".ckpt"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def before_scoring(task, checkpoint: str, *, out_dir, seed, label, method, model, reference, overwrite: bool,
                   model_opts: dict) -> tuple[int, str, dict | None, dict | None]:
    """Check everything ``score`` can check before loading; return ``(seed, label, method, manifest)``.

    ``method`` (the result's entry) comes from the caller, else from the checkpoint's
    manifest (``unlearn_config.json`` of ``unlearnbench unlearn``), else None; ``seed`` from
    the caller, else the manifest's, else 0; ``label`` from the caller, else the method's
    name, else :func:`default_label`.
    """
    from unlearnbench.manifest import method_block, read_manifest
    from unlearnbench.results import result_stem

    manifest = None
    check_reference(reference)
    if model is None:
        check_model_opts(task, model_opts)
        check_checkpoint(task, checkpoint)
    if not checkpoint.startswith("world:"):
        found = read_manifest(checkpoint)
        if found is not None:
            manifest = found[0]
            if method is None:
                method = method_block(*found)
    if seed is None:
        seed = (manifest or {}).get("seed", 0)
    seed = check_seed(seed)
    label = label or (method or {}).get("name") or default_label(task, checkpoint)
    check_task_data(task)
    if out_dir is not None:
        check_result_free(out_dir, result_stem(task.name, label, seed), overwrite)
    return seed, label, method, manifest
