"""Check the mini-canvas world: does the target draw what it is asked for?

Builds the world at the current ``UNLEARNBENCH_SCALE`` (cached), samples the target (and
optionally other checkpoints) on every (style, object) prompt with the world's evaluation
seeds, classifies the samples with the world's own judges, and prints the share of prompts
drawn correctly (both judges right), per domain, and the judges' accuracy on held-out real
renders and on their VAE reconstructions. ``--recipe '{"t2i_steps": 400}'`` overrides recipe
entries (experiments only). ``--sheet DIR`` writes a contact sheet PNG per model.

    UNLEARNBENCH_SCALE=default python tests/perf/canvas_world_check.py [--models world:target,world:retain]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="{}", help="JSON overrides of the scale's recipe (experiments)")
    ap.add_argument("--task", default="mini-canvas/object/circle")
    ap.add_argument("--models", default="world:target")
    ap.add_argument("--sheet", default=None)
    args = ap.parse_args(argv)

    from unlearnbench.cache import scale
    from unlearnbench.tasks import mini_canvas as mc

    mc.RECIPES[scale()].update(json.loads(args.recipe))
    from unlearnbench.runner import get_task, load_model

    t0 = time.perf_counter()
    root = mc.WORLD.build(progress=False)
    print(f"[{time.perf_counter() - t0:.0f}s] world {root}", flush=True)
    task = get_task(args.task)
    judge = mc.judge(task)
    r = mc.recipe()
    # judges on fresh real renders (another seed) and on their VAE reconstructions
    fresh = mc.dataset({**r, "seed": 12345, "per_pair": 4})
    u8 = np.round(fresh["images"] * 255).astype(np.uint8)
    objs, styles = mc.concepts(r)
    pred = judge.classify(u8)
    acc_real = {d: float(np.mean([names.index(p) == y for p, y in zip(pred[d], fresh[d])]))
                for d, names in (("style", styles), ("object", objs))}
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(root / "vae"))
    with torch.no_grad():
        x = torch.as_tensor(fresh["images"]).permute(0, 3, 1, 2) * 2 - 1
        rec = ((vae.decode(vae.encode(x).latent_dist.mean).sample + 1) / 2).clamp(0, 1)
    rec_u8 = np.round(rec.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    pred = judge.classify(rec_u8)
    acc_rec = {d: float(np.mean([names.index(p) == y for p, y in zip(pred[d], fresh[d])]))
               for d, names in (("style", styles), ("object", objs))}
    print(f"judges on real renders: {acc_real}; on VAE reconstructions: {acc_rec}", flush=True)

    rows = mc.prompts(task)
    for spec in args.models.split(","):
        t1 = time.perf_counter()
        model = load_model(task, spec, device="cpu")
        imgs = model.sample([q["prompt"] for q in rows], [q["seed"] for q in rows], r["guidance"], r["steps"],
                            (r["size"], r["size"]))
        pred = judge.classify(imgs)
        ok_s = np.array([p == q["labels"]["style"] for p, q in zip(pred["style"], rows)])
        ok_o = np.array([p == q["labels"]["object"] for p, q in zip(pred["object"], rows)])
        print(f"\n== {spec} ({time.perf_counter() - t1:.0f}s): both {100 * np.mean(ok_s & ok_o):.1f} %, "
              f"style {100 * ok_s.mean():.1f} %, object {100 * ok_o.mean():.1f} %; pixel std across prompts "
              f"{imgs.astype(float).std(0).mean():.1f}")
        print(f"{'':10s}" + "".join(f"{s:>9s}" for s in styles))
        for o in objs:
            cells = []
            for s in styles:
                k = [i for i, q in enumerate(rows) if q["labels"] == {"style": s, "object": o}]
                cells.append(f"{int((ok_s[k] & ok_o[k]).sum())}/{len(k)}")
            print(f"{o:10s}" + "".join(f"{c:>9s}" for c in cells))
        if args.sheet:
            from PIL import Image

            os.makedirs(args.sheet, exist_ok=True)
            n_s = r["eval_seeds"]
            grid = np.zeros((len(objs) * r["size"], len(styles) * n_s * r["size"], 3), np.uint8)
            for i, q in enumerate(rows):
                oi, si, k = objs.index(q["labels"]["object"]), styles.index(q["labels"]["style"]), q["seed"] - 1000
                s = r["size"]
                grid[oi * s:(oi + 1) * s, (si * n_s + k) * s:(si * n_s + k + 1) * s] = imgs[i]
            name = spec.replace(":", "_").replace("/", "_")
            Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(
                os.path.join(args.sheet, f"{name}.png"))
    print(f"\n[{time.perf_counter() - t0:.0f}s] done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
