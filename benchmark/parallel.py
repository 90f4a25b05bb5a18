"""Build independent world models side by side, one single-threaded process each.

The embedded worlds' models are tiny (0.3-1 M parameters), so one intra-op thread is as fast
as many and keeps the weights reproducible; what a multi-core machine can give them is
process parallelism: the target and the retain model of a world train independently.
``$UNLEARNBENCH_BUILD_WORKERS`` caps the number of processes (default: the CPU count; 1
builds in this process, one model after the other, with the same bytes as a result).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable


def build_workers(n_jobs: int) -> int:
    """How many processes to build ``n_jobs`` independent models with."""
    raw = os.environ.get("UNLEARNBENCH_BUILD_WORKERS", "")
    try:
        cap = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        from unlearnbench.errors import UserError

        raise UserError(f"UNLEARNBENCH_BUILD_WORKERS must be an integer, not {raw!r}") from None
    return max(1, min(n_jobs, cap))


def run_jobs(fn: Callable[..., Any], jobs: list[tuple], workers: int | None = None) -> list[Any]:
    """``[fn(*args) for args in jobs]``, in ``workers`` spawned processes when more than one.

    ``fn`` must be a module-level function (it is pickled by name); the children inherit the
    environment (``$UNLEARNBENCH_HOME``, ``$UNLEARNBENCH_SCALE``...). Each job gets its index
    as the keyword ``position`` (for its progress bar's line). Errors are re-raised here.
    """
    workers = build_workers(len(jobs)) if workers is None else workers
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*args, position=0) for args in jobs]
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(fn, *args, position=i) for i, args in enumerate(jobs)]
        return [f.result() for f in futures]
