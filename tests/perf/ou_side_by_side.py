"""Side by side: open-unlearning's TOFU evaluator vs ``unlearnbench score --profile open-unlearning``.

Same model, same data (the first ``--rows`` rows of every config), same settings (float32,
CPU, greedy 200 new tokens, the same thread count), run one after the other. Reports wall
time, CPU seconds (user + system) and peak RSS of each process (``os.wait4``), their ratios,
the machine load before and after, and how far the per-item results agree.

Usage::

    OPEN_UNLEARNING_SRC=/path/to/open-unlearning \\
    python tests/perf/ou_side_by_side.py MODEL_DIR DATA_DIR [--rows 40] [--threads 2] [--out DIR]

``OPEN_UNLEARNING_SRC`` is a checkout of locuslab/open-unlearning (the fixture used commit
d3d7cf9); without it the script says so and exits 0. ``OPEN_UNLEARNING_VENV`` names a venv
with its requirements; otherwise one is made under ``--out`` with Python 3.11 and its pins
(transformers 4.45.1, datasets 3.0.1, accelerate 0.34.2, hydra-core 1.3, ...; torch from
whatever pip resolves, lm-eval and deepspeed only because it imports them). MODEL_DIR is a
transformers-5 safetensors folder (e.g. the ``ou-smollm2`` fixture's conversion); a
transformers-4 view of it (rope settings, tokenizer class, inline chat template) is made for
open-unlearning. DATA_DIR is a TOFU copy in the hub layout (the fixture's ``data/``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OU_PINS = ["transformers==4.45.1", "datasets==3.0.1", "accelerate==0.34.2", "hydra-core==1.3", "hydra_colorlog==1.2.0",
           "rouge-score==0.1.2", "scipy==1.14.1", "scikit-learn==1.5.2", "numpy==2.2.3", "huggingface-hub==0.29.1",
           "lm-eval==0.4.8", "deepspeed==0.15.4", "torch"]


def run_measured(cmd: list[str], env: dict, cwd: Path, log: Path) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS (GiB) of the process tree's largest member."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        sys.exit(f"{cmd[0]} failed with exit code {rc}; see {log}")
    return {"wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_rss_gib": round(ru.ru_maxrss / 2**20, 2)}


def subset(data: Path, out: Path, rows: int) -> Path:
    """The first ``rows`` rows of every config, in the same hub layout."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    text = (data / "README.md").read_text()
    head = yaml.safe_load(text.split("---", 2)[1])
    for cfg in head["configs"]:
        for f in cfg["data_files"]:
            lines = [x for x in (data / f["path"]).read_text().splitlines() if x.strip()]
            (out / f["path"]).write_text("\n".join(lines[:rows]) + "\n")
    (out / "README.md").write_text(text)
    return out


def transformers4_view(model: Path, out: Path) -> Path:
    """The model folder as transformers 4.45 reads it (weights linked, not copied)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json"):
        if not (out / name).exists():
            (out / name).symlink_to((model / name).resolve())
    cfg = json.loads((model / "config.json").read_text())
    rope = cfg.pop("rope_parameters", None) or {}
    if "rope_theta" in rope:
        cfg["rope_theta"], cfg["rope_scaling"] = rope["rope_theta"], None
    cfg["torch_dtype"] = cfg.pop("dtype", "float32")
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    tc = json.loads((model / "tokenizer_config.json").read_text())
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    if (model / "chat_template.jinja").exists():
        tc["chat_template"] = (model / "chat_template.jinja").read_text()
    for k in ("backend", "is_local", "local_files_only"):
        tc.pop(k, None)
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=1))
    return out


def ou_venv(out: Path) -> Path:
    if os.environ.get("OPEN_UNLEARNING_VENV"):
        return Path(os.environ["OPEN_UNLEARNING_VENV"])
    venv = out / "ou-venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", *OU_PINS], check=True,
                       env={**os.environ, "DS_BUILD_OPS": "0"})
    return venv


def agreement(ours_dir: Path, ou_eval: Path) -> dict:
    """Largest relative gap of the forget/retain avg losses, and how many greedy answers are identical."""
    ev = json.loads((gzip.open(ou_eval) if ou_eval.suffix == ".gz" else open(ou_eval)).read())
    rows = [json.loads(x) for f in ours_dir.glob("*.samples.jsonl") for x in f.read_text().splitlines()]
    gaps, same, total = [], 0, 0
    for split, ou in (("forget", "forget"), ("retain", "retain"), ("real_authors", "ra"), ("world_facts", "wf")):
        for r in (r for r in rows if r["split"] == split):
            b = ev[f"{ou}_Q_A_Prob"]["value_by_index"][str(r["index"])]["avg_loss"]
            gaps.append(abs(r["nll_answer"] - b) / abs(b))
            same += r["generation"] == ev[f"{ou}_Q_A_ROUGE"]["value_by_index"][str(r["index"])]["generation"]
            total += 1
    return {"max_rel_gap_avg_loss": max(gaps) if gaps else None, "identical_generations": f"{same}/{total}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--rows", type=int, default=40, help="rows per config (default 40)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ou-side-by-side"))
    ap.add_argument("--batch-size", type=int, default=32, help="open-unlearning's eval batch size (its default 32)")
    a = ap.parse_args()
    src = os.environ.get("OPEN_UNLEARNING_SRC")
    if not src or not (Path(src) / "src" / "eval.py").is_file():
        print("skipped: set OPEN_UNLEARNING_SRC to a checkout of locuslab/open-unlearning")
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    data = subset(a.data, a.out / "data", a.rows)
    view = transformers4_view(a.model, a.out / "ou-model")
    work = a.out / "ou-work"
    (work / "locuslab").mkdir(parents=True, exist_ok=True)  # open-unlearning reads ./locuslab/TOFU
    if not (work / "locuslab" / "TOFU").exists():
        (work / "locuslab" / "TOFU").symlink_to(data.resolve())
    import shutil

    cache = a.out / "hf-datasets-cache"  # fresh: `datasets` caches a local folder by its name, not its rows
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads),
           "UNLEARNBENCH_THREADS": str(a.threads), "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(cache)}
    py = ou_venv(a.out) / "bin" / "python"
    ou_out = a.out / "ou-out"
    ou_cmd = [str(py), str(Path(src) / "src" / "eval.py"), "experiment=eval/tofu/default", "task_name=side_by_side",
              f"model.model_args.pretrained_model_name_or_path={view}",
              f"model.tokenizer_args.pretrained_model_name_or_path={view}", "model.model_args.device_map=cpu",
              "model.model_args.attn_implementation=sdpa", "model.model_args.torch_dtype=float32",
              f"eval.tofu.batch_size={a.batch_size}", f"paths.output_dir={ou_out}", "eval.tofu.overwrite=true"]
    ub_out = a.out / "unlearnbench-out"
    ub_cmd = [sys.executable, "-m", "unlearnbench.cli", "score", "tofu/forget10", str(a.model), "--data", str(data),
              "--profile", "open-unlearning", "-o", str(ub_out), "--quiet"]
    load0 = os.getloadavg()
    ou = run_measured(ou_cmd, env, work, a.out / "ou.log")
    ub = run_measured(ub_cmd, env, a.out, a.out / "unlearnbench.log")
    report = {"rows_per_config": a.rows, "threads": a.threads, "load_before": load0, "load_after": os.getloadavg(),
              "open_unlearning": ou, "unlearnbench": ub,
              "speedup_wall": round(ou["wall_s"] / ub["wall_s"], 2), "speedup_cpu": round(ou["cpu_s"] / ub["cpu_s"], 2),
              "rss_ratio": round(ub["peak_rss_gib"] / ou["peak_rss_gib"], 2),
              "agreement": agreement(ub_out, ou_out / "TOFU_EVAL.json"), "commands": {"ou": ou_cmd, "unlearnbench": ub_cmd}}
    (a.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "commands"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
