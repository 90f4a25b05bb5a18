"""``unlearnbench demo``: the quick default, offline, on a laptop CPU.

Runs ``mini-tofu/forget10`` end to end: builds (or reuses) the embedded world's target and
retain models and the retain model's reference statistics, scores the target and the
retain model, unlearns the target with each method (``ga``, ``npo``, ``simnpo`` by
default, with their world defaults) and scores every unlearned model against the
reference, then prints one comparison table. Every step goes through the public API
(:func:`unlearnbench.unlearning.unlearn`, :func:`unlearnbench.runner.score`), and every row
is a ``unlearnbench/result/v1`` file under ``out_dir`` with its per-sample values beside
it. Rows are cached: a row whose key (task spec, world recipe, method config, seed) is
unchanged is read back from its result file, so a warm rerun only prints the table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path

TASK = "mini-tofu/forget10"
COLUMNS = ("forget quality", "model utility", "forget ROUGE-L", "forget truth ratio", "seconds")
_METRIC_OF = {"forget quality": "forget_quality", "model utility": "model_utility",
              "forget ROUGE-L": "forget/rouge_l_recall", "forget truth ratio": "forget/truth_ratio"}


def fmt_readme(v: float | None) -> str:
    """A demo number as the README prints it: 3 significant digits (``0.880``, ``2.90e-12``)."""
    if v is None:
        return "—"
    return "0" if v == 0 else f"{v:#.3g}" if abs(v) >= 1e-3 else f"{v:.2e}"


def markdown_table(rows: list[dict]) -> str:
    """The README's demo table (every column but ``seconds``), from :func:`run_demo`'s rows."""
    cols = [c for c in COLUMNS if c != "seconds"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + " | ".join([r["label"]] + [fmt_readme(r[c]) for c in cols]) + " |" for r in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def _scale(scale: str):
    """Run with ``$UNLEARNBENCH_SCALE`` set to ``scale`` (restored afterwards)."""
    old = os.environ.get("UNLEARNBENCH_SCALE")
    os.environ["UNLEARNBENCH_SCALE"] = scale
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("UNLEARNBENCH_SCALE", None)
        else:
            os.environ["UNLEARNBENCH_SCALE"] = old


def _row(label: str, result: dict) -> dict:
    m = result["metrics"]
    row = {"label": label, "seconds": float(result.get("timings", {}).get("total_s", 0.0))}
    for col, key in _METRIC_OF.items():
        row[col] = m.get(key, {}).get("value")
    return row


def _cached(out: Path, stem: str, key: str):
    from unlearnbench.results import load_result

    path = out / f"{stem}.result.json"
    if path.exists() and (out / f"{stem}.key").exists() and (out / f"{stem}.key").read_text() == key:
        return load_result(path)
    return None


def run_demo(scale: str = "default", out_dir: str | os.PathLike | None = None, methods: str | list[str] = "ga,npo,simnpo",
             *, seed: int = 0, progress: bool = True, print_table: bool = True) -> int:
    """Run the demo; returns 0. ``methods``: comma-separated method names (LLM methods)."""
    from unlearnbench import cache
    from unlearnbench.display import print_comparison
    from unlearnbench.errors import UserError
    from unlearnbench.registry import WORLDS
    from unlearnbench.results import canonical_json_hash, result_stem
    from unlearnbench.runner import get_task, score
    from unlearnbench.threads import thread_policy
    from unlearnbench.unlearning import get_method, make_config, unlearn

    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if len(set(names)) != len(names):
        raise UserError(f"--methods lists a method twice: {','.join(names)}")
    for m in names:
        get_method(m, "llm")  # unknown names fail before any work
    with _scale(scale), thread_policy(0):  # every demo model is tiny (one policy: unlearnbench.threads)
        out = Path(out_dir) if out_dir is not None else cache.home() / "demo" / scale
        out.mkdir(parents=True, exist_ok=True)
        task = get_task(TASK)
        world = WORLDS.get(task.world)
        t0 = time.perf_counter()
        models = world.prepare(task, ("target", "retain"))
        target, retain = models["target"], models["retain"]
        reference = world.reference(task)
        build_s = time.perf_counter() - t0
        base_key = {"task": task.spec_hash(), "world": str(world.root().name), "seed": seed}
        rows, results = [], {}
        for label, ckpt in (("target", target), ("retain", retain)):
            stem = result_stem(task.name, label, seed)
            key = canonical_json_hash({**base_key, "model": label})
            result = _cached(out, stem, key)
            if result is None:
                scored = score(task.name, str(ckpt), reference=reference, out_dir=out, seed=seed, label=label,
                               progress=progress)
                result = scored.result
                (out / f"{stem}.key").write_text(key)
            results[label] = result
            rows.append(_row(label, result))
        for name in names:
            method = get_method(name, "llm")
            config = dataclasses.asdict(make_config(method, task=task))
            stem = result_stem(task.name, name, seed)
            key = canonical_json_hash({**base_key, "model": "target", "method": name, "config": config})
            result = _cached(out, stem, key)
            if result is None:
                model, record = unlearn(task.name, name, model=str(target), seed=seed, progress=progress)
                scored = score(task.name, str(target), reference=reference, out_dir=out, seed=seed, label=name,
                               method={"name": name, "config": record["config"]}, model=model, progress=progress,
                               timings={"unlearn_s": record["unlearn_seconds"]})
                result = scored.result
                (out / f"{stem}.key").write_text(key)
            results[name] = result
            rows.append(_row(name, result))
    if print_table:
        print_comparison(f"{TASK} (embedded world, scale {scale})", COLUMNS, rows)
        print(f"results: {out}")
        if build_s > 1:
            print(f"world models built/loaded in {build_s:.0f} s (cached under {cache.home()})")
    run_demo.last = {"rows": rows, "results": results, "out_dir": out}
    return 0
