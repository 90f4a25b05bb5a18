"""Step time of ``unlearnbench unlearn`` with torch's default threads and with the thread policy,
under a busy CPU (not part of the test suite).

Starts ``--busy`` CPU-bound processes (the "other users" of a shared machine), then runs the
same ``unlearn`` twice through the console script: once with ``UNLEARNBENCH_THREADS`` set to the
CPU count (what torch does by default) and once with the policy (one thread for a tiny model).
Prints seconds per optimizer step (from the checkpoint's manifest), the child's CPU seconds and
the load average. The world must be built already (``unlearnbench demo`` builds mini-TOFU).

    UNLEARNBENCH_HOME=~/.cache/unlearnbench python tests/perf/unlearn_threads.py [--busy 2] \\
        [--task mini-tofu/forget10] [--method ga]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(args, env_extra: dict, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("UNLEARNBENCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(env_extra)
    exe = os.path.join(os.path.dirname(sys.executable), "unlearnbench")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, "unlearn", args.task, "--method", args.method, "-o", str(out), "--quiet", "--overwrite",
                    *sum((["--set", s] for s in args.set), [])], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (manifest,) = out.glob("*.checkpoint/unlearn_config.json")
    m = json.loads(manifest.read_text())
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "unlearn_s": m["unlearn_seconds"], "steps": m["steps"], "threads": m["torch_threads"],
            "s_per_step": m["unlearn_seconds"] / max(1, m["steps"] or 1), "load": os.getloadavg()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--busy", type=int, default=2, help="CPU-bound background processes (default 2)")
    ap.add_argument("--task", default="mini-tofu/forget10")
    ap.add_argument("--method", default="ga")
    ap.add_argument("--set", action="append", default=[], help="extra --set KEY=VALUE for unlearn")
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    tmp = Path(tempfile.mkdtemp(prefix="unlearn_threads_"))
    try:
        time.sleep(2)
        rows = [("torch default", run_once(args, {"UNLEARNBENCH_THREADS": str(cpus)}, tmp / "default")),
                ("thread policy", run_once(args, {}, tmp / "policy"))]
    finally:
        for p in busy:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.task} --method {args.method}, {args.busy} busy processes, {cpus} CPUs")
    print(f"{'threads':>16} {'steps':>6} {'s/step':>8} {'unlearn s':>10} {'wall s':>8} {'cpu s':>8}  load (1/5/15 min)")
    for name, r in rows:
        print(f"{name + ' (' + str(r['threads']) + ')':>16} {r['steps']:>6} {r['s_per_step']:>8.2f} {r['unlearn_s']:>10.1f} "
              f"{r['wall_s']:>8.1f} {r['cpu_s']:>8.1f}  {' '.join(f'{x:.1f}' for x in r['load'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
