"""``--data [DATASET=]DIR``: score a real task on a local copy of its dataset.

``DIR`` is the dataset in the Hugging Face hub layout, as ``datasets.load_dataset(DIR, CONFIG,
split=SPLIT)`` reads it: a ``README.md`` whose YAML header declares the ``configs`` and their
``data_files`` (what a hub dataset repository holds), or, without one, one file per config
(``<config>.json``) or per config and split (``<config>/<split>.json``). A bare ``DIR`` stands
for the task's own dataset (``locuslab/TOFU``, ``muse-bench/MUSE-News``, ``cais/wmdp``);
``DATASET=DIR`` for another one a task reads (WMDP's utility set ``cais/mmlu``).

Tasks whose loader reads a local copy named by an environment variable (CIFAR-10/100:
``$UNLEARNBENCH_CIFAR10_PATH``; I2P: ``$UNLEARNBENCH_I2P_CSV``) get ``DIR`` through it.
The data location is not part of the task spec (the data hash in the result identifies the
data); the folders used are recorded in the result's ``task.data_dir``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from unlearnbench.errors import UserError
from unlearnbench.spec import TaskSpec


def parse(specs: list[str] | None) -> dict[str | None, Path]:
    """``["DIR", "cais/mmlu=DIR2"]`` -> ``{None: DIR, "cais/mmlu": DIR2}`` (folders must exist)."""
    out: dict[str | None, Path] = {}
    for spec in specs or []:
        name, sep, folder = spec.rpartition("=")
        key = name if sep and name else None
        path = Path(folder if sep else spec).expanduser()
        if not path.exists():
            raise UserError(f"--data: {path} does not exist")
        if key in out:
            raise UserError(f"--data names {key or 'the task dataset'} twice")
        out[key] = path
    return out


def describe(specs: dict[str | None, Path]) -> dict[str, str] | None:
    return {(k or "task"): str(v.resolve()) for k, v in specs.items()} or None


@contextlib.contextmanager
def using(task: TaskSpec, specs: dict[str | None, Path]) -> Iterator[None]:
    """Make ``task``'s loaders read the local copies in ``specs`` while the block runs."""
    if not specs:
        yield
        return
    env = task.source.get("env")
    kind = task.source.get("kind")
    if task.modality == "llm" and kind in ("hub", "local"):
        from unlearnbench.tasks import llm_data

        mapping = {(k or str(task.source["path"])): v for k, v in specs.items()}
        with llm_data.local_copies(mapping):
            yield
    elif env:
        if set(specs) != {None}:
            raise UserError(f"--data for {task.name} takes one folder or file (its dataset), not DATASET=DIR")
        old = os.environ.get(env)
        os.environ[env] = str(specs[None])
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = old
    elif kind == "world" or task.world:
        raise UserError(f"{task.name} is an embedded world that generates its own data; --data does not apply")
    else:
        raise UserError(f"{task.name} reads no dataset (its prompts are part of the task); --data does not apply")
