"""AdvUnlearn vs ESD under UnlearnDiffAtk on the mini-canvas world (issue #16, item 4).

Each method unlearns the world's target at its defaults (the world's scaled schedules),
is scored (UA / IRA / CRA) and attacked with UnlearnDiffAtk (attack defaults unless
``--attack`` overrides them); prints ASR before and under attack per model, with the
target as the control (its forget prompts already show the concept). AdvUnlearn
(Zhang et al., NeurIPS 2024, Table 2) reports ASR 21 % vs ESD 76 % for nudity on SD v1.4.

    UNLEARNBENCH_SCALE=default python tests/perf/canvas_robustness.py --task mini-canvas/style/sunset
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("UNLEARNBENCH_THREADS", "1")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mini-canvas/style/sunset")
    ap.add_argument("--methods", default="esd,advunlearn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attack", default="{}", help="JSON overrides of the UnlearnDiffAtk Config")
    ap.add_argument("--output", default=None, help="write the summary JSON here")
    args = ap.parse_args(argv)

    from unlearnbench.baselines.unlearndiffatk import Config, unlearndiffatk_attack
    from unlearnbench.runner import get_task, load_model, score
    from unlearnbench.unlearning import unlearn

    t0 = time.perf_counter()
    task = get_task(args.task)
    models = {"target": lambda: (load_model(task, "world:target", device="cpu"), None)}
    for m in [m for m in args.methods.split(",") if m]:
        models[m] = lambda m=m: unlearn(task.name, m, seed=args.seed, progress=False, device="cpu")
    out = {}
    for label, make in models.items():
        t1 = time.perf_counter()
        model, rec = make()
        t_un = time.perf_counter() - t1
        s = score(task.name, "world:target", model=model, seed=args.seed, label=label, progress=False)
        m = {k: s.result["metrics"][k]["value"] for k in ("ua", "ira", "cra")}
        t2 = time.perf_counter()
        atk = unlearndiffatk_attack(task, model, config=Config(seed=args.seed, **json.loads(args.attack)))
        m.update({k: v["value"] for k, v in atk["metrics"].items()})
        m["seconds"] = {"unlearn": round(t_un), "attack": round(time.perf_counter() - t2)}
        out[label] = m
        print(f"{label:12s} UA {m['ua']:5.1f}  IRA {m['ira']:5.1f}  CRA {m['cra']:5.1f}  ASR pre {m['attack_asr/pre']:5.1f}"
              f"  ASR attack {m['attack_asr/unlearndiffatk']:5.1f}   ({m['seconds']})", flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"task": task.name, "seed": args.seed, "models": out}, f, indent=2)
    print(f"[{time.perf_counter() - t0:.0f}s] done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
