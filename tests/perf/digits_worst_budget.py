"""How far the worst-case selection goes on digits, per upper-level step ``w_lr`` (not a test).

For each ``w_lr``: the digits/worst-10 set it selects (everything else as the task), how many of
random-10's samples it swapped out, exact Retrain's UA / MIA-Efficacy on it (seed 0, as the task's
reference), the untouched target's Avg. Gap to that Retrain, and the noise floor (mean Avg. Gap of
two independent retrains, seeds 1000 and 1001). The table in ``tasks/digits.py`` is this output.

    UNLEARNBENCH_HOME=/tmp/ub python tests/perf/digits_worst_budget.py [--w-lr 0.3,1,1.5,3,1000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--w-lr", default="0.3,1,1.5,3,1000")
    args = ap.parse_args()

    from unlearnbench.catalog import load_all
    from unlearnbench.classifier import load_classifier
    from unlearnbench.classifier_training import train_from_scratch
    from unlearnbench.metrics.classification import GAP_METRICS, avg_gap
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_protocol, get_task
    from unlearnbench.tasks.classifier_protocol import split_indices, task_data, train_recipe

    load_all()
    base = get_task("digits/worst-10")
    random_set = set(split_indices(get_task("digits/random-10"))["forget"].tolist())
    target = load_classifier(WORLDS.get("digits").checkpoint(base, "target"), device="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    print("w_lr | swapped | Retrain UA / MIA-Eff. | target Avg. Gap | noise floor")
    for w_lr in (float(v) for v in args.w_lr.split(",")):
        task = base.replace(settings={**base.settings, "forget": {**base.settings["forget"], "w_lr": w_lr}})
        proto, data = get_protocol(task), task_data(task)
        keep = split_indices(task)["retain"]
        forget = set(split_indices(task)["forget"].tolist())

        def metrics(model):
            agg = proto.aggregate(task, proto.infer(task, model, progress=False), None)
            return {k: agg[k]["value"] for k in GAP_METRICS}

        arch, recipe = task.settings["architecture"], train_recipe(task)
        retrains = [metrics(train_from_scratch(arch["name"], arch.get("kwargs") or {}, data.x_train[keep],
                                               data.y_train[keep], recipe, seed)) for seed in (0, 1000, 1001)]
        ref = retrains[0]
        floor = float(np.mean([avg_gap(r, ref) for r in retrains[1:]]))
        print(f"{w_lr:g} | {len(forget - random_set)} | {ref['ua']:.2f} / {ref['mia_efficacy']:.2f} | "
              f"{avg_gap(metrics(target), ref):.2f} | {floor:.2f}", flush=True)
    load = os.getloadavg()
    print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, load {load[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
