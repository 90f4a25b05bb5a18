"""Several processes, one result: sharded inference and rank-0-only writes under ``accelerate launch``.

``accelerate launch --num_processes N unlearnbench score|run ...`` starts N copies of the
command with ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` set. This module is what makes them
cooperate instead of each doing the whole job:

* :func:`rank`, :func:`world_size`, :func:`is_main` read the process group (initialised on
  first use through ``accelerate.PartialState``: gloo on CPU, NCCL on GPUs);
* :func:`map_sharded` splits a list of work items over the ranks (strided: item ``i`` goes to
  rank ``i % N``, which balances the length-sorted batches), runs each share locally and
  gathers the results back **in the original order** on every rank (``all_gather_object``),
  so every rank computes the same metrics from the same rows as a single process would;
* only the main process writes checkpoints, results, logs and manifests; the others wait at
  :func:`barrier` (:func:`main_first` lets rank 0 build a shared cache entry, e.g. an
  embedded world, before the others read it);
* inside :func:`local` (and on rank 0 inside :func:`main_first`) nothing is sharded: code
  that only some ranks run must not wait for the others.

A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) never touches ``torch.distributed``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_LOCAL = 0  # depth of ``local()`` blocks: > 0 means no collective calls


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def _ensure_group() -> None:
    """Initialise the process group of an ``accelerate launch`` / ``torchrun`` run (once)."""
    dist = _dist()
    if dist is None or dist.is_initialized() or _env_int("WORLD_SIZE", 1) <= 1:
        return
    import torch
    from accelerate import PartialState

    # reads RANK / WORLD_SIZE / MASTER_ADDR (set by accelerate launch or torchrun); on a machine
    # without CUDA accelerate only forms a process group (gloo) when told the run is on CPU
    PartialState(cpu=not torch.cuda.is_available())


def world_size() -> int:
    """Processes in this run (1 without a launcher)."""
    if _env_int("WORLD_SIZE", 1) <= 1:
        return 1
    _ensure_group()
    dist = _dist()
    return dist.get_world_size() if dist is not None and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a launcher)."""
    if world_size() <= 1:
        return 0
    return _dist().get_rank()


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def sharding() -> bool:
    """Whether inference is split over several processes here (not inside :func:`local`)."""
    return _LOCAL == 0 and world_size() > 1


def barrier() -> None:
    """Wait for every process (no-op for one process or inside :func:`local`)."""
    if sharding():
        _dist().barrier()


@contextlib.contextmanager
def local() -> Iterator[None]:
    """A block that only some ranks run: inference in it is not sharded, no collective call."""
    global _LOCAL
    _LOCAL += 1
    try:
        yield
    finally:
        _LOCAL -= 1


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a cached world), the others after it is done."""
    if not sharding():
        yield
        return
    if not is_main():
        barrier()
    try:
        with local():
            yield
    finally:
        if is_main():
            barrier()


def shard_indices(n: int, ranks: int | None = None, me: int | None = None) -> list[int]:
    """Indices of ``n`` items that rank ``me`` of ``ranks`` handles (strided: ``me, me+ranks, ...``)."""
    ranks = world_size() if ranks is None else ranks
    me = rank() if me is None else me
    return list(range(me, n, ranks))


def gather_in_order(results: Sequence[R], indices: Sequence[int], n: int) -> list[R]:
    """Every rank's ``(indices, results)`` gathered and put back in the original order of ``n`` items."""
    if not sharding():
        return list(results)
    dist = _dist()
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, (list(indices), list(results)))
    out: list[Any] = [None] * n
    seen = 0
    for idx, res in parts:
        for i, r in zip(idx, res):
            out[i] = r
        seen += len(idx)
    if seen != n:
        raise RuntimeError(f"gathered {seen} results for {n} items")
    return out


def map_sharded(fn: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
    """``fn(items)`` with the items split over the ranks and the results gathered in order.

    ``fn`` maps a list to a list of the same length, one result per item. One process (or
    inside :func:`local`): simply ``fn(list(items))``.
    """
    if not sharding():
        return fn(list(items))
    idx = shard_indices(len(items))
    mine = fn([items[i] for i in idx]) if idx else []
    return gather_in_order(mine, idx, len(items))


def compute_block(model: Any = None, *, per_device_batch: Any = None, batch_source: str | None = None) -> dict:
    """The result's ``compute`` block: how many processes, which device and dtype, and the batch."""
    per = per_device_batch if per_device_batch is not None else getattr(model, "batch_size", None)
    per = int(per) if isinstance(per, int) and not isinstance(per, bool) else None
    n = world_size()
    block = {"world_size": n, "per_device_batch": per, "effective_batch": per * n if per is not None else None,
             "device": getattr(model, "device_name", None), "dtype": getattr(model, "dtype_name", None)}
    gen = getattr(model, "generation_batch", None)
    if callable(gen):
        block["generate_batch"] = gen()
    if batch_source:
        block["batch_size_source"] = batch_source
    return block
