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

import numpy as np
import torch

torch.set_num_threads(int(os.environ.get("UNLEARNBENCH_THREADS", "1")))


def _sheet(task, model, path: str) -> None:
    """Contact sheet of ``model`` on every prompt of ``task`` (rows: prompts, columns: seeds),
    captioned with the world judges' verdict (style / object)."""
    from unlearnbench.contact_sheet import write_contact_sheet
    from unlearnbench.tasks import mini_canvas as mc

    r, rows = mc.recipe(), mc.prompts(task)
    imgs = model.sample([q["prompt"] for q in rows], [q["seed"] for q in rows], r["guidance"], r["steps"])
    pred = mc.judge(task).classify(imgs)
    verdicts = [f"judged {ps}/{po}" for ps, po in zip(pred["style"], pred["object"])]
    write_contact_sheet(imgs, [q["prompt"] for q in rows], [q["seed"] for q in rows], verdicts, path)
    # and a compact grid: objects (rows) x styles (columns, one image per seed), 4x nearest upscaling
    from PIL import Image

    objs, styles = mc.concepts(r)
    n, s = r["eval_seeds"], r["size"]
    grid = np.zeros((len(objs) * s, len(styles) * n * s, 3), np.uint8)
    for im, q in zip(imgs, rows):
        o, c = objs.index(q["labels"]["object"]), styles.index(q["labels"]["style"]) * n + q["seed"] - 1000
        grid[o * s:(o + 1) * s, c * s:(c + 1) * s] = im
    Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(
        path.replace(".png", "-grid.png"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mini-canvas/style/sunset")
    ap.add_argument("--methods", default="esd,advunlearn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attack", default="{}", help="JSON overrides of the UnlearnDiffAtk Config, or 'none'")
    ap.add_argument("--sheets", default=None, help="write each model's contact sheet (every prompt and seed) here")
    ap.add_argument("--retain", action="store_true", help="also the world's retain model (trains it on first use)")
    ap.add_argument("--output", default=None, help="write the summary JSON here")
    args = ap.parse_args(argv)

    from unlearnbench.baselines.unlearndiffatk import Config, unlearndiffatk_attack
    from unlearnbench.runner import get_task, load_model, score
    from unlearnbench.unlearning import unlearn

    t0 = time.perf_counter()
    task = get_task(args.task)
    models = {"target": lambda: (load_model(task, "world:target", device="cpu"), None)}
    if args.retain:
        models["retain"] = lambda: (load_model(task, "world:retain", device="cpu"), None)
    for m in [m for m in args.methods.split(",") if m]:
        models[m] = lambda m=m: unlearn(task.name, m, seed=args.seed, progress=False, device="cpu")
    out = {}
    for label, make in models.items():
        t1 = time.perf_counter()
        model, rec = make()
        t_un = time.perf_counter() - t1
        s = score(task.name, "world:target", model=model, seed=args.seed, label=label, progress=False)
        m = {k: s.result["metrics"][k]["value"] for k in ("ua", "ira", "cra")}
        if args.sheets:
            _sheet(task, model, os.path.join(args.sheets, f"{task.name.replace('/', '_')}-{label}.png"))
        t2 = time.perf_counter()
        if args.attack != "none":
            atk = unlearndiffatk_attack(task, model, config=Config(seed=args.seed, **json.loads(args.attack)))
            m.update({k: v["value"] for k, v in atk["metrics"].items()})
        m["seconds"] = {"unlearn": round(t_un), "attack": round(time.perf_counter() - t2)}
        out[label] = m
        asr = "".join(f"  {k} {m[k]:5.1f}" for k in ("attack_asr/pre", "attack_asr/unlearndiffatk") if k in m)
        print(f"{label:12s} UA {m['ua']:5.1f}  IRA {m['ira']:5.1f}  CRA {m['cra']:5.1f}{asr}   ({m['seconds']})",
              flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"task": task.name, "seed": args.seed, "models": out}, f, indent=2)
    print(f"[{time.perf_counter() - t0:.0f}s] done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
