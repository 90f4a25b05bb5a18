"""Tune each classifier method's one knob on digits/random-10 (not part of the test suite).

SalUn's protocol (and Unlearn-WorstCase's, for worst-case sets): for every method, a grid over
its learning rate (alpha for IU and SSD) with everything else at the task's defaults, one seed,
picking the smallest Avg. Gap to the exact Retrain model. Prints one line per method with every
grid value's Avg. Gap, UA and MIA-Efficacy; the chosen values go into ``tasks/digits.py``
(``METHOD_DEFAULTS``).

    UNLEARNBENCH_HOME=/tmp/ub python tests/perf/digits_tune.py [--task digits/random-10] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

GRID = {
    "ft": ("lr", [0.01, 0.03, 0.1]),
    "ga": ("lr", [1e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2]),
    "rl": ("lr", [3e-4, 1e-3, 3e-3, 1e-2]),
    "l1-sparse": ("lr", [0.01, 0.03, 0.1]),
    "salun": ("lr", [3e-4, 1e-3, 3e-3, 1e-2]),
    "ssd": ("alpha", [1.0, 2.0, 2.5, 3.0, 5.0, 10.0]),
    "scrub": ("lr", [5e-4, 3e-3, 1e-2, 2e-2, 3e-2]),
    "iu": ("alpha", [1.0, 3.0, 10.0, 30.0]),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="digits/random-10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(GRID))
    args = ap.parse_args()

    from unlearnbench.catalog import load_all
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import unlearn

    load_all()
    task = get_task(args.task)
    ref = WORLDS.get(task.world).reference(task)
    t0, c0 = time.perf_counter(), time.process_time()
    base = score(args.task, "world:target", reference=ref, progress=False).result["metrics"]
    print(f"target: Avg. Gap {base['avg_gap']['value']:.2f}  UA {base['ua']['value']:.2f}  "
          f"MIA {base['mia_efficacy']['value']:.2f}", flush=True)
    for method in args.methods.split(","):
        key, values = GRID[method]
        cells = []
        for v in values:
            model, _ = unlearn(args.task, method, overrides={key: v}, seed=args.seed, progress=False)
            m = score(args.task, "x", reference=ref, model=model, progress=False).result["metrics"]
            cells.append((m["avg_gap"]["value"], v, m["ua"]["value"], m["mia_efficacy"]["value"]))
        best = min(cells)
        print(f"{method:9s} {key}: " + " | ".join(f"{v:g}: {g:.2f} (UA {u:.1f}, MIA {mi:.1f})" for g, v, u, mi in cells)
              + f"  -> {best[1]:g}", flush=True)
    load = os.getloadavg()
    print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, load {load[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
