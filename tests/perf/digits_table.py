"""Time the full SalUn-style digits table (not part of the default test suite).

Runs every (task, method, seed) cell of ``leaderboard/table_salun_digits.yaml`` through
``unlearnbench.unlearning.unlearn`` + ``unlearnbench.runner.score`` (the calls the generic
``unlearnbench table`` runner makes), prints mean ± std per cell and the wall-clock.

    UNLEARNBENCH_HOME=/tmp/ub_table python tests/perf/digits_table.py [--seeds 0,1,2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import yaml


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(Path(__file__).resolve().parents[2] / "leaderboard" / "table_salun_digits.yaml"))
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the spec's)")
    ap.add_argument("--methods", default=None, help="comma-separated method names (default: all rows)")
    ap.add_argument("--out", default=None, help="write result files here")
    args = ap.parse_args()

    from unlearnbench.catalog import load_all
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import unlearn

    load_all()
    spec = yaml.safe_load(Path(args.spec).read_text())
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else spec["seeds"]
    rows = [r for r in spec["rows"] if not args.methods or r["method"] in args.methods.split(",")]
    load0 = os.getloadavg()
    print(f"[load] 1/5/15-min load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} "
          f"({os.cpu_count()} CPUs)", flush=True)
    t_all = time.perf_counter()
    refs = {}
    for name in spec["tasks"]:  # world models + references (cached after the first run)
        t0 = time.perf_counter()
        refs[name] = WORLDS.get("digits").reference(get_task(name))
        print(f"[setup] {name}: reference ready in {time.perf_counter() - t0:.1f} s", flush=True)
    table = {}
    for name in spec["tasks"]:
        for row in rows:
            vals = {m: [] for m in spec["metrics"]}
            for seed in seeds:
                model, record = unlearn(name, row["method"], model="world:target", overrides=row.get("config") or {},
                                        seed=seed, progress=False)
                res = score(name, "unlearned", reference=refs[name], seed=seed, label=row["label"], model=model,
                            method={"name": record["method"], "config": record["config"]}, progress=False,
                            out_dir=args.out, timings={"unlearn_s": record["unlearn_seconds"]})
                for m in spec["metrics"]:
                    v = res.result["metrics"].get(m, {}).get("value")
                    vals[m].append(np.nan if v is None else v)
            table[(name, row["label"])] = vals
            cells = "  ".join(f"{m}={np.mean(v):7.2f}±{np.std(v):5.2f}" if m != "rte" else f"{m}={np.mean(v):.4f}"
                              for m, v in vals.items())
            print(f"{name:18s} {row['label']:10s} {cells}", flush=True)
    total = time.perf_counter() - t_all
    load1 = os.getloadavg()
    print(f"TOTAL {total:.1f} s for {len(spec['tasks']) * len(rows) * len(seeds)} cells "
          f"(load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f})")
    summary = {f"{t}|{lab}": {m: [float(x) for x in v] for m, v in vals.items()} for (t, lab), vals in table.items()}
    print(json.dumps({"total_s": total, "cells": summary})[:200])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
