"""Robustness table on mini-tofu/forget10: GA / NPO / SimNPO / WAGLE / SOUL, plain and attacked.

Each method unlearns the world's target model (method defaults; WAGLE and SOUL wrap NPO), is
scored plainly, then under relearning, 8/4-bit RTN quantization and the three prompt
rewrites; the worst case per forget metric is taken over all of them. The retain model
(never saw the forget set) and the target model are scored the same way: the retain model's
relearning recovery is the control (it can only learn the relearned facts themselves, not
the held-back ones). Prints per-method tables, the rankings plain vs worst case, and writes
everything to ``--output`` (default ``$UNLEARNBENCH_HOME/robustness``).

    UNLEARNBENCH_SCALE=default python tests/perf/robustness_table.py [--methods ga,npo,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("UNLEARNBENCH_THREADS", "1")))

METHODS = {  # label -> (method, overrides)
    "ga": ("ga", {}),
    "npo": ("npo", {}),
    "simnpo": ("simnpo", {}),
    "wagle(npo)": ("wagle", {"loss": "npo"}),
    "soul(npo)": ("soul", {"loss": "npo"}),
}
KEYS = ("forget_quality", "forget/probability", "forget/rouge_l_recall", "forget/truth_ratio", "model_utility")


def _rank(rows: dict, key: str, higher_better: bool) -> list[str]:
    have = [k for k in rows if rows[k].get(key) is not None]
    return sorted(have, key=lambda k: rows[k][key], reverse=higher_better)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mini-tofu/forget10")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--output", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from unlearnbench import attacks as A
    from unlearnbench.cache import home
    from unlearnbench.reference import load_reference
    from unlearnbench.registry import WORLDS
    from unlearnbench.results import atomic_write_json
    from unlearnbench.runner import get_task, load_model, score
    from unlearnbench.unlearning import unlearn

    t0 = time.perf_counter()
    task = get_task(args.task)
    world = WORLDS.get(task.world)
    ref_path = world.reference(task)
    payload = load_reference(ref_path, task)[0]
    out_dir = args.output or str(home() / "robustness")
    retain = load_model(task, "world:retain", device="cpu")
    prompt_refs = {v: A.prompt_reference(task, v, retain, seed=args.seed) for v in A.PROMPT_VARIANTS}
    print(f"[{time.perf_counter() - t0:.0f}s] world, reference and prompt references ready", flush=True)

    models = {"retain (control)": lambda: (retain, None), "target": lambda: (load_model(task, "world:target", device="cpu"), None)}
    for label in [m for m in args.methods.split(",") if m]:
        if label not in METHODS:
            raise SystemExit(f"unknown method label {label!r}; choose from {', '.join(METHODS)}")
        name, ov = METHODS[label]

        def make(name=name, ov=ov):
            lm, rec = unlearn(task.name, name, overrides=dict(ov), seed=args.seed, progress=False, device="cpu")
            return lm, rec

        models[label] = make

    results = {}
    for label, make in models.items():
        t1 = time.perf_counter()
        lm, rec = make()
        t_unlearn = time.perf_counter() - t1
        method = {"name": rec["method"], "config": rec["config"]} if rec else None
        scored = score(task.name, "world:target", reference=ref_path, model=lm, seed=args.seed, label=label,
                       method=method, progress=False, out_dir=out_dir)
        outcomes = A.run_attacks(task, lm, ["relearn", "quantize", "prompt"], reference=payload, plain_rows=scored.rows,
                                 prompt_references=prompt_refs, seed=args.seed)
        full = A.write_robustness(scored.path, scored.result, outcomes)
        results[label] = full["robustness"]
        rob = full["robustness"]
        print(f"\n== {label}  (unlearn {t_unlearn:.0f}s, attacks {time.perf_counter() - t1 - t_unlearn:.0f}s)", flush=True)
        print(f"{'attack':22s}" + "".join(f"{k:>24s}" for k in KEYS))
        for name, vals in rob["attacks"].items():
            print(f"{name:22s}" + "".join(f"{vals.get(k, float('nan')):24.4f}" for k in KEYS))
        print(f"{'worst case':22s}" + "".join(
            f"{rob['worst_case'][k]['value']:24.4f}" if k in rob["worst_case"] else f"{'':24s}" for k in KEYS))
        rec_ = rob["details"]["relearn"]["recovery"]
        print("relearn recovery on held-back questions: " + ", ".join(f"{k} {v:+.4f}" for k, v in rec_.items()))

    methods = [m for m in results if m not in ("retain (control)", "target")]
    plain = {m: results[m]["attacks"]["none"] for m in methods}
    worst = {m: {k: v["value"] for k, v in results[m]["worst_case"].items()} for m in methods}
    print("\n== rankings (best first)")
    changed = {}
    for key, hib in (("forget_quality", True), ("forget/probability", False), ("forget/rouge_l_recall", False),
                     ("forget/truth_ratio", True)):
        a, b = _rank(plain, key, hib), _rank(worst, key, hib)
        changed[key] = a != b
        print(f"{key:24s} plain: {' > '.join(a)}\n{'':24s} worst: {' > '.join(b)}   {'CHANGED' if a != b else 'same'}")
    summary = {"task": task.name, "seed": args.seed, "robustness": results, "ranking_changed": changed,
               "seconds": time.perf_counter() - t0}
    path = atomic_write_json(os.path.join(out_dir, "robustness_table.json"), summary)
    print(f"\nwrote {path} ({summary['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
