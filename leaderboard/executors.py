"""Where a table's cells run: ``local`` processes, a Ray cluster, or Slurm job arrays (submitit).

Every executor runs the same function per cell, :func:`run_claimed`, on a file system that
every worker sees (the table's output folder):

1. the cache is read again (``cells/<key>.json``): a cell another process finished meanwhile
   is not recomputed;
2. the cell is *claimed* by creating ``cells/<key>.claim`` with ``O_CREAT | O_EXCL`` (atomic
   on local and NFS v3+ file systems): of two processes that want it, exactly one gets it.
   The claim names its host, process id and time; a claim whose process is gone (same host)
   or that is older than ``$UNLEARNBENCH_CLAIM_TTL`` seconds (default one day; other hosts)
   is stale and taken over, so a killed table resumes;
3. the cell runs under the thread policy of :mod:`unlearnbench.threads` (as ``demo`` runs its
   rows: the embedded worlds' tiny models on one thread, real models on the machine), then its
   marker is written and the claim removed.

Executors:

* ``local`` (default): ``--jobs N`` spawned processes on this machine (1: this process); two
  ``table`` commands on one output folder share the work through the claims, and each waits for
  the cells the other is computing before it assembles the table;
* ``ray``: one Ray task per cell with ``num_cpus`` / ``num_gpus`` resources, on the cluster
  ``ray.init`` finds (``$RAY_ADDRESS``), else a local one;
* ``slurm``: one submitit job array (``slurm_array_parallelism`` cells at a time), with the
  partition, time limit, CPUs and GPUs per cell given; submitit's ``local`` and ``debug``
  clusters run the same path without Slurm (tests, dry runs).

A cell's key (its spec hash) and its result do not depend on the executor: the results equal
the serial run's.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from unlearnbench.errors import UserError

EXECUTORS = ("local", "ray", "slurm")
CLAIM_TTL = 24 * 3600.0


# -- claims ------------------------------------------------------------------------------------
def claim_path(out: Path, sha: str) -> Path:
    return Path(out) / "cells" / f"{sha}.claim"


def _claim_ttl() -> float:
    raw = os.environ.get("UNLEARNBENCH_CLAIM_TTL", "")
    try:
        return float(raw) if raw else CLAIM_TTL
    except ValueError:
        raise UserError(f"UNLEARNBENCH_CLAIM_TTL must be a number of seconds, not {raw!r}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def claim_is_stale(path: Path) -> bool:
    """A claim whose process is gone (same host) or older than the TTL (any host)."""
    try:
        info = json.loads(path.read_text())
        age = time.time() - float(info["time"])
    except (OSError, ValueError, KeyError, TypeError):
        try:  # being written right now, or unreadable: judge by its age
            return time.time() - path.stat().st_mtime > 60
        except OSError:
            return True
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return True
    return age > _claim_ttl()


def try_claim(out: Path, sha: str) -> bool:
    """Claim cell ``sha`` atomically; True if this process got it (a stale claim is taken over)."""
    path = claim_path(out, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not claim_is_stale(path):
                return False
            try:  # take over: rename first, so of two processes that found it stale only one removes it
                stale = path.with_name(f"{path.name}.stale-{os.getpid()}")
                os.rename(path, stale)
                stale.unlink()
            except OSError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f)
        return True
    return False


def release(out: Path, sha: str) -> None:
    try:
        claim_path(out, sha).unlink()
    except FileNotFoundError:
        pass


# -- one cell ------------------------------------------------------------------------------------
def run_claimed(spec, job, out: str | os.PathLike, progress: bool = False) -> bool:
    """Run ``job`` unless it is done or claimed by another process; True if it ran here.

    The per-cell function of every executor (module level: Ray and submitit pickle it)."""
    from unlearnbench.leaderboard.table import cell_done, run_cell
    from unlearnbench.threads import thread_policy

    out = Path(out)
    if cell_done(out, job) is not None:  # read again: another process may have finished it
        return False
    if not try_claim(out, job.sha):
        return False
    try:
        if cell_done(out, job) is not None:  # finished between the first look and the claim
            return False
        with thread_policy(0):  # as demo: tiny world models pinned, real models get the machine in score/unlearn
            run_cell(spec, job, out, progress=progress)
        return True
    finally:
        release(out, job.sha)


def _local_worker(spec, jobs: list, out: str, progress: bool, position: int = 0) -> list[str]:
    """One local worker: walk the cells in order, running each that is neither done nor claimed."""
    return [job.sha for job in jobs if run_claimed(spec, job, out, progress)]


def wait_for_others(out: Path, jobs: list, spec, progress: bool, poll: float = 1.0,
                    log: Callable[[str], None] | None = None) -> list[str]:
    """Wait until every cell is done; a cell whose claim disappears or goes stale without a
    result (its process was killed) is run here (returned: the cells run here)."""
    from unlearnbench.leaderboard.table import cell_done

    pending = [j for j in jobs if cell_done(out, j) is None]
    told, ran = False, []
    while pending:
        if log and not told:
            log(f"waiting for {len(pending)} cell(s) claimed by other processes")
            told = True
        still = []
        for j in pending:
            if cell_done(out, j) is not None:
                continue
            if not claim_path(out, j.sha).exists() or claim_is_stale(claim_path(out, j.sha)):
                if run_claimed(spec, j, out, progress):
                    ran.append(j.sha)
                if cell_done(out, j) is None:
                    still.append(j)
            else:
                still.append(j)
        pending = still
        if pending:
            time.sleep(poll)
    return ran


# -- executors -------------------------------------------------------------------------------------
def run_local(spec, jobs: list, out: Path, *, workers: int = 1, progress: bool = False,
              log: Callable[[str], None] | None = None) -> list[str]:
    """``workers`` processes (1: this one) share ``jobs`` through the claims."""
    ran = []
    if workers <= 1 or len(jobs) <= 1:
        for i, j in enumerate(jobs, 1):
            if log and cell_state(out, j) == "todo":
                log(f"[{i}/{len(jobs)}] {j.task} | {j.row.label} | seed {j.seed} (cell {j.sha[:12]})")
            if run_claimed(spec, j, out, progress):
                ran.append(j.sha)
    else:
        from unlearnbench.parallel import run_jobs

        if log:
            log(f"running {len(jobs)} cell(s) in {workers} processes")
        # each worker walks the list from a different start, so they rarely race for a claim
        shares = run_jobs(_local_worker, [(spec, jobs[k:] + jobs[:k], str(out), False) for k in range(workers)],
                          workers)
        ran = [sha for share in shares for sha in share]
    return ran + wait_for_others(out, jobs, spec, progress, log=log)


def cell_state(out: Path, job) -> str:
    from unlearnbench.leaderboard.table import cell_done

    if cell_done(out, job) is not None:
        return "done"
    return "claimed" if claim_path(out, job.sha).exists() else "todo"


def _ray_env() -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith(("UNLEARNBENCH_", "HF_", "OMP_NUM_THREADS"))}


def run_ray(spec, jobs: list, out: Path, *, cpus: float = 1, gpus: float = 0, progress: bool = False,
            log: Callable[[str], None] | None = None) -> list[str]:
    """One Ray task per cell (``num_cpus=cpus``, ``num_gpus=gpus``) on the cluster ``ray.init`` finds."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'unlearnbench[cluster]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        task = ray.remote(run_claimed).options(num_cpus=cpus, num_gpus=gpus, max_retries=1,
                                               runtime_env={"env_vars": _ray_env()})
        refs = [task.remote(spec, j, str(Path(out).resolve()), False) for j in jobs]
        if log:
            log(f"submitted {len(refs)} cell(s) to Ray ({cpus} CPU, {gpus} GPU each)")
        ran = [j.sha for j, here in zip(jobs, ray.get(refs)) if here]
    finally:
        if started:
            ray.shutdown()
    return ran + wait_for_others(out, jobs, spec, progress, log=log)


def run_slurm(spec, jobs: list, out: Path, *, cluster: str | None = None, partition: str | None = None,
              time_min: int = 240, cpus: int = 1, gpus: int = 0, parallel: int = 64, progress: bool = False,
              log: Callable[[str], None] | None = None) -> list[str]:
    """One submitit job array over the cells; ``cluster``: None (Slurm), ``local`` or ``debug``."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit: pip install 'unlearnbench[cluster]'") from None
    folder = Path(out) / "slurm" / "%j"
    ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    # slurm_* parameters are checked by submitit whatever the cluster, and used only on Slurm
    params: dict[str, Any] = {"timeout_min": int(time_min), "cpus_per_task": int(cpus), "name": "unlearnbench-table",
                              "slurm_array_parallelism": int(parallel)}
    if partition:
        params["slurm_partition"] = partition
    if gpus:
        params["gpus_per_node"] = int(gpus)  # one cell per job: its GPUs
    ex.update_parameters(**params)
    outs = [str(Path(out).resolve())] * len(jobs)
    subs = ex.map_array(run_claimed, [spec] * len(jobs), jobs, outs, [False] * len(jobs))
    if log:
        log(f"submitted a job array of {len(subs)} cell(s) to {ex.cluster} (logs under {Path(out) / 'slurm'})")
    ran = [j.sha for j, sub in zip(jobs, subs) if sub.result()]
    return ran + wait_for_others(out, jobs, spec, progress, log=log)


def execute(name: str, spec, jobs: list, out: Path, *, workers: int = 1, cpus: float = 1, gpus: float = 0,
            slurm: dict | None = None, progress: bool = False, log: Callable[[str], None] | None = None) -> list[str]:
    """Run ``jobs`` with executor ``name`` (see the module docstring); the keys of the cells run
    by this command (not those another process ran meanwhile)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r} (use {', '.join(EXECUTORS)})")
    if workers < 1:
        raise UserError(f"--jobs must be >= 1, not {workers}")
    if cpus <= 0 or gpus < 0:
        raise UserError(f"--cpus-per-cell must be > 0 and --gpus-per-cell >= 0 (got {cpus}, {gpus})")
    if not jobs:
        return []
    if name == "local":
        return run_local(spec, jobs, out, workers=workers, progress=progress, log=log)
    if name == "ray":
        return run_ray(spec, jobs, out, cpus=cpus, gpus=gpus, progress=progress, log=log)
    return run_slurm(spec, jobs, out, cpus=int(max(1, cpus)), gpus=int(gpus), progress=progress, log=log,
                  **(slurm or {}))
