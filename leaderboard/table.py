"""``unlearnbench table SPEC.yaml``: regenerate a paper table from cached, independent cells.

A spec (YAML) names tasks, seeds, metrics and rows (a method with its config, or a model
scored as is)::

    title: "TOFU-style unlearning on mini-tofu"
    tasks: [mini-tofu/forget10]
    real_tasks: [tofu/forget10]          # used with --real
    seeds: [0, 1, 2]
    metrics: [forget_quality, model_utility]
    references: {tofu/forget10: refs/tofu_forget10_retain.json}   # optional; world tasks default to their world's
    rows:
      - {label: Target, model: world:target}
      - {label: Retain, method: retain}                # same as model: world:retain
      - {label: GA, method: ga, config: {lr: 1e-5}}
      - {label: NPO, method: npo, base: {tofu/forget10: locuslab/tofu_ft_llama2-7b}}

Each (task, row, seed) is a *cell*, an independent job keyed by the sha256 of
``{task, task version, method, full resolved config, model, seed, world scale}``.
``base: previous`` (or ``previous`` as a task's value in a ``base`` mapping) chains a row over the
task list: the cell of task k unlearns the model left by the same row and seed on task k-1
(MUSE's sequential unlearning requests); its key's ``model`` is ``cell:<sha of that cell>``, so
the key hashes the whole chain, and a chained cell keeps its checkpoint in ``<key>/checkpoint``.
The first task of a plain ``base: previous`` starts from ``world:target``. A cell is
``unlearn(...)`` then ``score(...)`` (or ``score`` alone for a model row) with its result,
per-sample file and a hard-linked copy of the reference artefact in ``<out>/cells/<key>/``,
then ``<out>/cells/<key>.json`` (written last, atomically) marks it done. Re-running fills only
missing cells; ``--list`` shows them and ``--cell KEY`` runs chosen ones, so any scheduler can
fan the cells out. Every cell folder is a self-contained submission for ``leaderboard verify``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.render import to_csv, to_latex, to_markdown
from unlearnbench.results import atomic_write_json, canonical_json_hash, read_json, utc_now

SPEC_KEYS = ("title", "tasks", "real_tasks", "seeds", "metrics", "real_metrics", "rows", "references", "description")
ROW_KEYS = ("label", "method", "config", "model", "base")
MODEL_METHODS = {"target": "world:target", "retain": "world:retain"}  # rows scored without unlearning
PREVIOUS = "previous"  # base: the model this row left on the previous task (sequential requests)


def _html_page(model) -> str:
    from unlearnbench.leaderboard.html import render_table_html

    return render_table_html(model)


FORMATS = {"md": (".md", to_markdown), "latex": (".tex", to_latex), "csv": (".csv", to_csv), "html": (".html", _html_page)}


@dataclass(frozen=True)
class Row:
    label: str
    method: str | None = None          # None: score ``model`` as is
    config: dict = field(default_factory=dict)
    model: Any = None                  # model rows: checkpoint, or {task: checkpoint}
    base: Any = "world:target"         # method rows: the model to unlearn, or {task: checkpoint}

    def checkpoint(self, task: str) -> str:
        value = self.model if self.method is None else self.base
        if isinstance(value, dict):
            if task not in value:
                raise UserError(f"table row {self.label!r} names no {'model' if self.method is None else 'base'} "
                                f"for task {task}")
            value = value[task]
        return str(value)


@dataclass(frozen=True)
class TableSpec:
    title: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    real_tasks: tuple[str, ...] = ()
    references: dict = field(default_factory=dict)
    path: str = ""
    real_metrics: tuple[str, ...] = ()   # --real's columns when its tasks report others (default: metrics)

    def task_list(self, real: bool) -> tuple[str, ...]:
        if real and not self.real_tasks:
            raise UserError(f"{self.path}: --real needs `real_tasks` in the spec")
        return self.real_tasks if real else self.tasks

    def metric_list(self, real: bool) -> tuple[str, ...]:
        return self.real_metrics if real and self.real_metrics else self.metrics


def _unknown(keys, allowed, where: str) -> None:
    for k in keys:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed)})"
            raise UserError(f"{where}: unknown key {k!r}{hint}")


def _str_list(doc: dict, key: str, where: str, required: bool = True) -> tuple[str, ...]:
    v = doc.get(key)
    if v is None and not required:
        return ()
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise UserError(f"{where}: `{key}` must be a non-empty list of names")
    if len(set(v)) != len(v):
        raise UserError(f"{where}: `{key}` lists a name twice")
    return tuple(v)


def parse_spec(doc: Any, where: str = "table spec") -> TableSpec:
    """Check the shape of a parsed spec and build a :class:`TableSpec` (no registry look-ups)."""
    if not isinstance(doc, dict):
        raise UserError(f"{where}: expected a mapping at the top level")
    _unknown(doc, SPEC_KEYS, where)
    title = doc.get("title") or Path(where).stem
    if not isinstance(title, str):
        raise UserError(f"{where}: `title` must be a string")
    tasks = _str_list(doc, "tasks", where)
    real = _str_list(doc, "real_tasks", where, required=False)
    metrics = _str_list(doc, "metrics", where)
    real_metrics = _str_list(doc, "real_metrics", where, required=False)
    seeds = doc.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"{where}: `seeds` must be a non-empty list of integers")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"{where}: `seeds` lists a seed twice")
    refs = doc.get("references") or {}
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise UserError(f"{where}: `references` must map task names to reference files")
    raw_rows = doc.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise UserError(f"{where}: `rows` must be a non-empty list")
    rows, labels = [], set()
    for i, r in enumerate(raw_rows):
        rw = f"{where}: rows[{i}]"
        if not isinstance(r, dict):
            raise UserError(f"{rw}: expected a mapping like {{label: GA, method: ga, config: {{...}}}}")
        _unknown(r, ROW_KEYS, rw)
        label = r.get("label")
        if not isinstance(label, str) or not label:
            raise UserError(f"{rw}: needs a `label`")
        if label in labels:
            raise UserError(f"{rw}: label {label!r} is used twice")
        labels.add(label)
        method, model, config = r.get("method"), r.get("model"), r.get("config") or {}
        if not isinstance(config, dict):
            raise UserError(f"{rw} ({label}): `config` must be a mapping")
        if method in MODEL_METHODS:
            if model is not None:
                raise UserError(f"{rw} ({label}): method {method!r} means model {MODEL_METHODS[method]}; drop `model`")
            method, model = None, MODEL_METHODS[method]
        if (method is None) == (model is None):
            raise UserError(f"{rw} ({label}): give exactly one of `method` or `model`")
        if method is None and (config or r.get("base") is not None):
            raise UserError(f"{rw} ({label}): `config` and `base` only apply to a `method` row")
        for name, v in (("model", model), ("base", r.get("base"))):
            if v is not None and not isinstance(v, (str, dict)):
                raise UserError(f"{rw} ({label}): `{name}` must be a checkpoint or a mapping task -> checkpoint")
        if method is not None and not isinstance(method, str):
            raise UserError(f"{rw} ({label}): `method` must be a name")
        rows.append(Row(label, method, dict(config), model, r.get("base") or "world:target"))
    return TableSpec(title, tasks, tuple(seeds), metrics, tuple(rows), real, dict(refs), where, real_metrics)


def load_spec(path: str | os.PathLike) -> TableSpec:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"table spec not found: {p}")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{p}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    return parse_spec(doc, str(p))


def check_spec(spec: TableSpec, real: bool = False) -> list[str]:
    """Registry problems: unknown tasks, metrics a task does not report, methods missing for its modality."""
    from unlearnbench.registry import TASKS
    from unlearnbench.runner import get_task
    from unlearnbench.unlearning import get_method

    problems = []
    for tname in spec.task_list(real):
        if tname not in TASKS:
            try:
                TASKS.get(tname)
            except UserError as e:
                problems.append(str(e))
            continue
        task = get_task(tname)
        for m in spec.metric_list(real):
            if m not in task.metrics:
                problems.append(f"task {tname} does not report metric {m!r} (it reports {', '.join(task.metrics)})")
        for row in spec.rows:
            if row.method is not None:
                try:
                    get_method(row.method, task.modality)
                except UserError as e:
                    problems.append(f"row {row.label}: {e}")
    return problems


# -- cells ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellJob:
    task: str
    row: Row
    seed: int
    key: dict
    after: "CellJob | None" = None     # base: previous: the cell whose output this cell unlearns
    keep: bool = False                 # a later cell starts from this one's model: save it

    @property
    def sha(self) -> str:
        return canonical_json_hash(self.key)


def plan_cells(spec: TableSpec, real: bool = False) -> list[CellJob]:
    """Every (task, row, seed) cell with its key (method configs resolved to their full form).

    Deterministic rows (a model scored as is, or a method declaring ``deterministic = True``)
    get one cell, the first seed's: every seed would give the same numbers, so they are scored
    once and shown without a spread."""
    from unlearnbench.cache import scale
    from unlearnbench.runner import get_task
    from unlearnbench.unlearning import get_method, make_config

    jobs, last = [], {}  # last: (row label, seed) -> that row's cell on the previous task
    for i, tname in enumerate(spec.task_list(real)):
        task = get_task(tname)
        for row in spec.rows:
            config, seeds = None, spec.seeds[:1]  # a model scored as is: scoring draws nothing from the seed
            if row.method is not None:
                method = get_method(row.method, task.modality)
                config = dataclasses.asdict(make_config(method, dict(row.config), task))
                seeds = spec.seeds[:1] if getattr(method, "deterministic", False) else spec.seeds
            for seed in seeds:
                model, after = row.checkpoint(task.name), None
                if row.method is not None and model == PREVIOUS:
                    after = last.get((row.label, seed))
                    if after is None and i == 0 and row.base == PREVIOUS:
                        model = "world:target"  # the first request starts from the world's target
                    elif after is None:
                        raise UserError(f"table row {row.label!r}: `base: previous` on {task.name} needs the row "
                                        "on the task before it (the first task needs a model)")
                    else:
                        model = f"cell:{after.sha}"  # the key hashes the chain
                        jobs[jobs.index(after)] = after = dataclasses.replace(after, keep=True)
                key = {"task": task.name, "task_version": task.version, "method": row.method, "config": config,
                       "model": model, "seed": seed, "scale": scale()}
                jobs.append(CellJob(task.name, row, seed, key, after))
                last[(row.label, seed)] = jobs[-1]
    return jobs


def cell_done(out: Path, job: CellJob) -> Path | None:
    """The cell's result file if the cell is complete, else None."""
    marker = out / "cells" / f"{job.sha}.json"
    if not marker.is_file():
        return None
    try:
        rel = read_json(marker, "table cell").get("result")
    except UserError:
        return None
    path = out / "cells" / rel if rel else None
    return path if path is not None and path.is_file() else None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _reference_for(spec: TableSpec, task) -> Path | None:
    from unlearnbench.registry import WORLDS

    if task.name in spec.references:
        ref = Path(spec.references[task.name])
        if not ref.is_absolute() and spec.path:
            ref = Path(spec.path).parent / ref
        if not ref.is_file():
            raise UserError(f"reference for {task.name} not found: {ref}")
        return ref
    if task.world and task.references:
        world = WORLDS.get(task.world)
        world.prepare(task)  # target and retain, side by side where the world can: the cells need both
        return Path(world.reference(task))
    if task.references:  # never score silently without the metrics that need a reference
        raise UserError(f"task {task.name} needs a reference artefact ({', '.join(task.references)}): add "
                        f"`references: {{{task.name}: FILE}}` to the spec (build FILE with `unlearnbench reference build`)")
    return None


def run_cell(spec: TableSpec, job: CellJob, out: Path, *, progress: bool = False) -> Path:
    """Unlearn (method rows) and score one cell; return its result file."""
    from unlearnbench.manifest import MANIFEST
    from unlearnbench.results import sha256_file
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import save_unlearned, unlearn

    task = get_task(job.task)
    cell_dir = out / "cells" / job.sha
    ref = _reference_for(spec, task)
    local_ref = None
    if ref is not None:
        local_ref = cell_dir / f"reference.{sha256_file(ref)[:16]}.json"
        _link_or_copy(ref, local_ref)
    common = dict(reference=local_ref, out_dir=cell_dir, seed=job.seed, label=job.row.label, progress=progress)
    if job.row.method is None:
        scored = score(task.name, job.key["model"], **common)
    else:
        start = job.key["model"]
        if job.after is not None:  # sequential: unlearn the previous request's model (run it first if needed)
            start = out / "cells" / job.after.sha / "checkpoint"
            if not (start / MANIFEST).is_file():
                from unlearnbench.leaderboard.executors import run_claimed, wait_for_others

                if cell_done(out, job.after) is None and not run_claimed(spec, job.after, out, progress):
                    wait_for_others(out, [job.after], spec, progress)  # another process has it: wait, or take over
                if not (start / MANIFEST).is_file():  # done without its checkpoint (an older cache): redo it here
                    run_cell(spec, job.after, out, progress=progress)
            start = str(start)
        model, record = unlearn(task.name, job.row.method, model=start, overrides=dict(job.row.config),
                                seed=job.seed, progress=progress)
        if job.keep:
            save_unlearned(model, record, cell_dir / "checkpoint", overwrite=True)
        scored = score(task.name, f"unlearned:{record['method']}", model=model,
                       method={"name": record["method"], "config": record["config"]},
                       timings={"unlearn_s": record["unlearn_seconds"]}, **common)
    result = dict(scored.result)
    result["per_sample"] = read_json(scored.path, "result file")["per_sample"]
    if local_ref is not None:  # record the reference relative to the cell folder: a self-contained submission
        result["references"] = [dict(r, path=local_ref.name) for r in result["references"]]
    atomic_write_json(scored.path, result)
    atomic_write_json(out / "cells" / f"{job.sha}.json", {
        "key": job.key, "result": f"{job.sha}/{scored.path.name}", "label": job.row.label, "created": utc_now(),
        "metrics": {k: v.get("value") for k, v in result["metrics"].items()},
    })
    return scored.path


def run_table(spec: TableSpec, out: str | os.PathLike, *, real: bool = False, only: list[str] | None = None,
              run: bool = True, progress: bool = False, log: Callable[[str], None] | None = None,
              executor: str = "local", workers: int = 1, cpus: float = 1, gpus: float = 0,
              slurm: dict | None = None) -> dict:
    """Run the missing cells (or those in ``only``, by key prefix) with ``executor``
    (:mod:`unlearnbench.leaderboard.executors`: ``local`` with ``workers`` processes, ``ray``,
    ``slurm``); return ``{"jobs", "results": {sha: result path or None}, "ran": [sha run here]}``."""
    from unlearnbench.leaderboard import executors

    out = Path(out)
    jobs = plan_cells(spec, real)
    if only:
        chosen = [j for j in jobs if any(j.sha.startswith(k) for k in only)]
        unmatched = [k for k in only if not any(j.sha.startswith(k) for j in jobs)]
        if unmatched:
            raise UserError(f"no cell of {spec.path or 'the spec'} has key {unmatched[0]!r} (see --list)")
    else:
        chosen = jobs
    todo = [j for j in chosen if cell_done(out, j) is None] if run else []
    if todo:
        _prepare_worlds(spec, todo)
    ran = executors.execute(executor, spec, todo, out, workers=workers, cpus=cpus, gpus=gpus, slurm=slurm,
                            progress=progress, log=log) if todo else []
    done = {j.sha: cell_done(out, j) for j in jobs}  # read back: other processes may have added cells
    return {"jobs": jobs, "results": done, "ran": ran}


def _prepare_worlds(spec: TableSpec, todo: list[CellJob]) -> None:
    """Build (or find) every embedded-world model and reference the cells use, once, here: cells
    running side by side (``--jobs``, Ray, Slurm) then only read the cache."""
    from unlearnbench.runner import get_task, resolve_checkpoint
    from unlearnbench.threads import thread_policy

    with thread_policy(0):  # world models are tiny (unlearnbench.threads)
        for name in dict.fromkeys(j.task for j in todo):
            task = get_task(name)
            _reference_for(spec, task)
            for model in dict.fromkeys(j.key["model"] for j in todo if j.task == name):
                if model.startswith("world:"):
                    resolve_checkpoint(task, model)


def assemble(spec: TableSpec, jobs: list[CellJob], results: dict, real: bool = False, out: Path | None = None):
    """The table model: rows x (task, metric), each cell summarised over the seeds that are done,
    judged as the metric declares (gaps to the reference model for Δ columns); target and
    reference rows (world models, exact methods) are marked and never bold. File links are
    relative to ``out`` (the table's output folder)."""
    from unlearnbench.leaderboard.build import entry_role, reference_values, summarize_entry
    from unlearnbench.leaderboard.cards import metric_card
    from unlearnbench.leaderboard.table_model import Column, RowInfo, from_rows
    from unlearnbench.metric import judgement

    tasks, metrics = spec.task_list(real), spec.metric_list(real)
    base = Path(out).resolve() if out is not None else Path.cwd()
    docs = {sha: (str(p), read_json(p, "result file")) for sha, p in results.items() if p is not None}
    cols, judged, refs = [], {}, {}
    for t in tasks:
        mine = [docs[j.sha] for j in jobs if j.task == t and j.sha in docs]
        refs[t] = reference_values(*mine[0], None, False) if mine else {}
        modality = mine[0][1]["task"].get("modality") if mine else None
        for m in metrics:
            stored = next((d["metrics"][m]["higher_is_better"] for _, d in mine if m in d["metrics"]), None)
            j = judged[(t, m)] = judgement(m, modality=modality, task=t, stored_higher_is_better=stored)
            anchor = refs[t].get(m.rsplit("/", 1)[-1]) if j.better == "reference" else None
            cols.append(Column(f"{t}\0{m}", m if len(tasks) == 1 else f"{t}: {m}", m, j.better, j.target, j.low, j.high,
                               "gap" if anchor is not None else "value", anchor, metric_card(m)))
    rows, stats = [], []
    for k, row in enumerate(spec.rows):
        cells, files, card, role, seeds = {}, [], None, "ranked", set()
        for t in tasks:
            runs = [docs[j.sha] for j in jobs if j.row == row and j.task == t and j.sha in docs]
            if not runs:
                continue
            e = summarize_entry(runs, list(metrics), {m: judged[(t, m)] for m in metrics}, refs[t], base)
            role, card = entry_role(runs[0][1]), card or e["card"]
            seeds |= set(e["seeds"])
            tagged = [dict(r, task=t) if len(tasks) > 1 else r for r in e["results"]]
            files += tagged
            for m, st in e["metrics"].items():
                cells[f"{t}\0{m}"] = dict(st, results=tagged)
        rows.append(RowInfo(row.label, role, None, row.method, sorted(seeds), card, files, f"row-{k}"))
        stats.append(cells)
    n_missing = sum(1 for j in jobs if results.get(j.sha) is None)
    note = f"mean ± std over seeds {', '.join(map(str, spec.seeds))} (deterministic rows: scored once)"
    note += f"; {n_missing} cell(s) not run yet" if n_missing else ""
    return from_rows(spec.title, cols, rows, stats, note=note + ".", ranked=False, text_columns=(("method", "label"),))


def table_cli(args) -> int:
    from unlearnbench.catalog import load_all
    from unlearnbench.results import atomic_write_text, slug

    load_all()
    spec = load_spec(args.spec)
    problems = check_spec(spec, args.real)
    if problems:
        raise UserError(f"{args.spec}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    out = Path(args.output or Path("runs") / f"table-{slug(Path(args.spec).stem)}{'-real' if args.real else ''}")
    if args.list:
        from unlearnbench.leaderboard.executors import cell_state

        for j in plan_cells(spec, args.real):
            state = cell_state(out, j).replace("todo", "missing")  # done / claimed (running elsewhere) / missing
            print(f"{j.sha}  {state:7}  {j.task}  {j.row.label}  seed={j.seed}")
        return 0
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr))
    slurm = {k: v for k, v in (("cluster", getattr(args, "slurm_cluster", None)),
                               ("partition", getattr(args, "slurm_partition", None)),
                               ("time_min", getattr(args, "slurm_time", None))) if v is not None}
    res = run_table(spec, out, real=args.real, only=args.cell or None, run=not args.no_run,
                    progress=not args.quiet and getattr(args, "jobs", 1) <= 1, log=log,
                    executor=getattr(args, "executor", "local"), workers=getattr(args, "jobs", 1),
                    cpus=getattr(args, "cpus_per_cell", 1), gpus=getattr(args, "gpus_per_cell", 0), slurm=slurm)
    table = assemble(spec, res["jobs"], res["results"], args.real, out)
    ext, fn = FORMATS[args.format]
    text = fn(table)
    path = atomic_write_text(out / f"table{ext}", text)
    if args.format != "html":
        print(text, end="")
    print(f"wrote {path} ({len(res['ran'])} cell(s) run, "
          f"{sum(1 for v in res['results'].values() if v is not None)}/{len(res['jobs'])} done)", file=sys.stderr)
    return 0
