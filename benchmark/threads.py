"""One thread policy for every command: tiny models pinned, real models using the machine.

torch parallelises each matrix multiply over its intra-op threads. For the embedded worlds'
models (0.04-5 M parameters) the multiplies are too small to gain from that, and on a shared
CPU the threads contend: measured on 2 cores under load, a mini-TOFU unlearning step took
21-27 s with torch's default threads and 2.3 s with one, and a mini-canvas training step 140 s
against 0.7 s. One thread also makes a tiny model's weights independent of the core count.
Real models (SmolLM2-135M, ResNet-18, Stable Diffusion) do gain, so they keep torch's
default (every core).

The rule, applied to every model the suite loads, trains or scores (``score``, ``unlearn``,
``run``, ``attack``, ``table``, ``demo`` and the world builds):

* a model with fewer than :data:`TINY_PARAMETERS` parameters runs with **one** thread;
* a larger model runs with torch's default thread count;
* ``$UNLEARNBENCH_THREADS=N`` overrides both (N >= 1), except in world builds: a tiny world
  model always trains on one thread, so the published world bytes do not depend on the
  machine (``reproducible=True``).

:func:`thread_policy` applies the rule for the duration of a ``with`` block and restores the
previous setting, so library callers are not left with a changed process.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from unlearnbench.errors import UserError

#: models below this many parameters count as tiny (every embedded world's own models do).
TINY_PARAMETERS = 10_000_000
ENV = "UNLEARNBENCH_THREADS"
_WORLD_BUILD = False  # inside a ``reproducible`` block (a world build)


def env_threads() -> int | None:
    """``$UNLEARNBENCH_THREADS`` as a positive int, or None when unset."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"{ENV} must be a positive integer, not {raw!r}")
    return n


def parameter_count(obj: Any) -> int:
    """Parameters of a torch module, a model adapter (``CausalLM``, ``Classifier``,
    ``ImageGenerator``) or an int (returned as is); 0 when nothing countable is found."""
    if isinstance(obj, int):
        return obj
    import torch

    if isinstance(obj, torch.nn.Module):
        return sum(p.numel() for p in obj.parameters())
    for attr in ("model", "module"):
        inner = getattr(obj, attr, None)
        if isinstance(inner, torch.nn.Module):
            return parameter_count(inner)
    pipe = getattr(obj, "pipe", None)
    if pipe is not None:
        parts = getattr(pipe, "components", {}) or {}
        return sum(parameter_count(c) for c in parts.values() if isinstance(c, torch.nn.Module))
    return 0


def threads_for(obj: Any, *, reproducible: bool = False) -> int | None:
    """Intra-op threads the policy gives ``obj`` (None: torch's default)."""
    tiny = parameter_count(obj) < TINY_PARAMETERS
    if (reproducible or _WORLD_BUILD) and tiny:
        return 1
    override = env_threads()
    if override is not None:
        return override
    return 1 if tiny else None


@contextlib.contextmanager
def thread_policy(obj: Any = 0, *, reproducible: bool = False) -> Iterator[int]:
    """Run the block with the policy's thread count for ``obj`` (``0``: a tiny model);
    yields the count in force and restores the previous one after. ``reproducible``: a
    world build (a tiny model ignores ``$UNLEARNBENCH_THREADS``)."""
    global _WORLD_BUILD
    import torch

    before, outer = torch.get_num_threads(), _WORLD_BUILD
    want = threads_for(obj, reproducible=reproducible)
    if want is None:
        want = _default_threads()
    if want != before:
        torch.set_num_threads(want)
    _WORLD_BUILD = outer or reproducible  # nested blocks of a world build stay reproducible
    try:
        yield want
    finally:
        _WORLD_BUILD = outer
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _default_threads() -> int:
    """The machine's share for a real model: ``$OMP_NUM_THREADS`` when set, else the CPUs this
    process may run on (what torch itself starts with on Linux)."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
