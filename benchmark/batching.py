"""Length-bucketed batching with out-of-memory back-off."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, so OOM shows early)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _is_oom(err: BaseException) -> bool:
    import torch

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def run_bucketed(items: Sequence[T], lengths: Sequence[int], fn: Callable[[list[T]], list[R]], batch_size: int,
                 progress=None) -> tuple[list[R], int]:
    """Apply ``fn`` to length-bucketed batches; halve the batch size on out-of-memory and retry.

    Returns results in the original order and the batch size that finally worked.
    ``progress`` (optional) is called with the number of items finished after each batch.
    Under ``accelerate launch`` the batches (the same ones a single process would form) are
    shared out over the processes and the results gathered back in order
    (:mod:`unlearnbench.distributed`), so every item is computed in the same batch, with the
    same numbers, whatever the number of processes.
    """
    from unlearnbench import distributed

    batches = length_buckets(lengths, batch_size)
    if not distributed.sharding():
        return _run_batches(items, batches, fn, batch_size, progress)
    mine = distributed.shard_indices(len(batches))
    idx = [i for b in mine for i in batches[b]]
    got, batch_size = _run_batches(items, [batches[b] for b in mine], fn, batch_size, progress)
    return distributed.gather_in_order([got[i] for i in idx], idx, len(items)), batch_size


def _run_batches(items, pending: list[list[int]], fn, batch_size: int, progress) -> tuple[list, int]:
    """Run the given batches of indices (halving on OOM); results at their indices (None elsewhere)."""
    import torch

    out: list = [None] * len(items)
    pending = list(pending)
    while pending:
        idx = pending.pop(0)
        try:
            res = fn([items[i] for i in idx])
        except Exception as err:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not _is_oom(err) or len(idx) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            batch_size = max(1, len(idx) // 2)
            pending = [idx[:batch_size], idx[batch_size:]] + pending
            continue
        for i, r in zip(idx, res):
            out[i] = r
        if progress is not None:
            progress(len(idx))
    return out, batch_size
