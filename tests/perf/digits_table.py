"""Time the SalUn-style digits table (not part of the test suite) and print its means per cell.

Runs ``leaderboard/table_salun_digits.yaml`` through the table runner (the calls
``unlearnbench table`` makes; cells are cached in ``--out``, so a second run only re-reads),
then prints the Markdown table, one line per (task, row) with the seed means, and the wall-clock,
CPU seconds and load average. The README's classifier numbers come from this output.

    UNLEARNBENCH_HOME=/tmp/ub_table python tests/perf/digits_table.py --out /tmp/ub_table/cells
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(Path(__file__).resolve().parents[2] / "leaderboard" / "table_salun_digits.yaml"))
    ap.add_argument("--out", required=True, help="cell folder (reused between runs)")
    ap.add_argument("--json", default=None, help="also write {task: {row: {metric: mean}}} here")
    args = ap.parse_args()

    from unlearnbench.catalog import load_all
    from unlearnbench.leaderboard.render import to_markdown
    from unlearnbench.leaderboard.table import assemble, load_spec, run_table
    from unlearnbench.results import read_json

    load_all()
    spec = load_spec(args.spec)
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_table(spec, args.out, log=lambda s: print(s, flush=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(to_markdown(assemble(spec, res["jobs"], res["results"])))
    means: dict = {}
    for job in res["jobs"]:
        for k, v in read_json(res["results"][job.sha], "result")["metrics"].items():
            means.setdefault(job.task, {}).setdefault(job.row.label, {}).setdefault(k, []).append(v["value"])
    for task, rows in means.items():
        for label, ms in rows.items():
            rows[label] = {k: float(np.mean(v)) for k, v in ms.items()}
            print(f"{task:17s} {label:10s} " + "  ".join(f"{k}={v:.2f}" for k, v in rows[label].items()))
    load1 = os.getloadavg()
    print(f"{len(res['ran'])} cell(s) run in {wall:.0f} s wall, {cpu:.0f} s CPU; load average "
          f"{load0[0]:.1f} at start, {load1[0]:.1f} at end ({os.cpu_count()} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(means, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
