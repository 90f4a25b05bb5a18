"""``leaderboard validate``: is a result well-formed and what it says it is? (``verify.py`` re-derives its numbers.)

*validate* checks a result v1 file without running anything heavy: the schema; that its task
and metrics are registered; that its ``run_id`` still matches its task, weights, method and
seed (so none of them was edited after the run); that it carries the reference artefacts its
task needs; that the per-sample file, the reference artefacts and the attachments it names sit
inside the submission folder (no ``../x``, no absolute paths) and hash to the recorded sha256.
Across several files (:func:`validate_files`) it rejects the same run under two seeds (equal
task, weights and method: a seed that changed nothing is not a second seed) and copies of one
run. Every problem is one line ``<file>: <what>``; the CLI prints them all and exits 2 if there
is any.

The *submission folder* is the result file's folder unless ``root`` names another (for
example the output folder of ``unlearnbench table``). Results scored locally against a world
reference record its absolute cache path; ``allow_external_references=True`` (``--local``)
accepts that on the machine that made them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.schema import schema_problems
from unlearnbench.results import RESULT_SCHEMA, read_json, run_id, sha256_file


@dataclass
class Report:
    """Outcome for one file: ``problems`` fail it, ``notes`` are shown but do not."""

    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    result: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [f"{self.path}: {p}" for p in self.problems] + [f"{self.path}: note: {n}" for n in self.notes]


def inside(base: Path, rel: str, root: Path, *, allow_absolute: bool = False) -> tuple[Path | None, str | None]:
    """Resolve ``rel`` (a path recorded in a result) against ``base``; ``(path, None)`` if it stays in ``root``."""
    if not rel or "\0" in rel:
        return None, f"empty or invalid path {rel!r}"
    is_abs = PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or bool(PureWindowsPath(rel).drive)
    if is_abs:
        if allow_absolute:
            return Path(rel), None
        return None, f"path {rel!r} is absolute; a submission may only name files inside its folder"
    target = (base / rel).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError:
        return None, f"path {rel!r} escapes the submission folder {root}"
    return target, None


def _task_and_registries():
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import METRICS, TASKS

    load_all()
    return TASKS, METRICS


def validate_file(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                  allow_external_references: bool = False) -> Report:
    """Check one result file; never raises for a bad file (problems are collected)."""
    from unlearnbench.runner import get_task

    p = Path(path)
    rep = Report(str(path))
    try:
        doc = read_json(p, "result file")
    except UserError as e:
        rep.problems.append(str(e).replace(f": {p}", "").replace(str(p), "").strip(" :") or "unreadable")
        return rep
    if not isinstance(doc, dict) or doc.get("schema") != RESULT_SCHEMA:
        rep.problems.append(f"not an {RESULT_SCHEMA} file (schema: {doc.get('schema') if isinstance(doc, dict) else None!r})")
        return rep
    rep.result = doc
    rep.problems += schema_problems(doc, "result")
    if rep.problems:
        return rep
    base = p.parent
    root_p = Path(root) if root is not None else base
    tasks, metrics = _task_and_registries()

    # task and metrics known
    tname, tver = doc["task"]["name"], doc["task"]["version"]
    task = None
    if tname not in tasks:
        try:
            tasks.get(tname)
        except UserError as e:
            rep.problems.append(str(e).split(" (see")[0])
    else:
        task = get_task(tname)
        if task.version != tver:
            rep.notes.append(f"result is for {tname} version {tver}; the installed task is version {task.version}")
    for mname, m in doc["metrics"].items():
        # protocols may report per-split variants, "<split>/<metric>" (e.g. "forget/truth_ratio")
        base_name = mname.rsplit("/", 1)[-1]
        declared = task is not None and (mname in task.metrics or base_name in task.metrics)
        if mname in metrics:
            hib = metrics.meta(mname).get("higher_is_better")
            if hib is not None and bool(hib) != m["higher_is_better"]:
                rep.problems.append(f"metric {mname}: higher_is_better is {m['higher_is_better']}, registered as {bool(hib)}")
        elif not declared and base_name not in metrics:
            rep.problems.append(f"unknown metric {mname!r} (neither registered nor declared by task {tname})")

    # per-sample values
    ps = doc["per_sample"]
    if ps is None:
        rep.notes.append(f"ingested result (format {doc['ingested']['format']}) without per-sample values: "
                         "its numbers are as reported by that tool and cannot be re-derived")
    else:
        target, err = inside(base, ps["path"], root_p)
        if err:
            rep.problems.append(f"per_sample: {err}")
        elif not target.is_file():
            rep.problems.append(f"per-sample file missing: {ps['path']}")
        else:
            digest = sha256_file(target)
            if digest != ps["sha256"]:
                rep.problems.append(f"per-sample file {ps['path']} has sha256 {digest[:12]}…, the result records "
                                    f"{ps['sha256'][:12]}… (edited or replaced)")
            else:
                n = sum(1 for line in target.read_text(encoding="utf-8").splitlines() if line.strip())
                if n != ps["rows"]:
                    rep.problems.append(f"per-sample file has {n} rows, the result records {ps['rows']}")

    # reference artefacts and attachments
    for i, ref in enumerate(doc["references"]):
        target, err = inside(base, ref["path"], root_p, allow_absolute=allow_external_references)
        if err:
            hint = " (pass --local to accept it for results scored on this machine)" if "absolute" in err else ""
            rep.problems.append(f"references[{i}] ({ref['role']}): {err}{hint}")
        elif not target.is_file():
            rep.problems.append(f"reference artefact missing: {ref['path']}")
        elif sha256_file(target) != ref["sha256"]:
            rep.problems.append(f"reference artefact {ref['path']} does not match its recorded sha256")
    for i, att in enumerate(doc.get("attachments") or []):
        target, err = inside(base, att["path"], root_p)
        if err:
            rep.problems.append(f"attachments[{i}] ({att['role']}): {err}")
        elif not target.exists():
            rep.problems.append(f"attachment missing: {att['path']}")
        elif att.get("sha256") and (not target.is_file() or sha256_file(target) != att["sha256"]):
            rep.problems.append(f"attachment {att['path']} does not match its recorded sha256")
    _check_identity(doc, task, rep)
    return rep


def _check_identity(doc: dict, task, rep: Report) -> None:
    """run_id recomputed from its inputs; the task's references present; a sample limit noted."""
    ingested = doc.get("ingested") is not None
    if doc.get("run_id") is not None:
        if doc["run_id"] != run_id(doc):
            rep.problems.append(f"run_id {doc['run_id']} does not match the result's task, weights, method and seed "
                                f"(they give {run_id(doc)}): edited after the run")
    elif not ingested:
        rep.problems.append("no run_id (every result `unlearnbench score` writes has one)")
    if task is not None and task.version == doc["task"]["version"] and task.references and not doc["references"] \
            and not ingested:
        rep.problems.append(f"scored without the reference artefact(s) task {task.name} needs "
                            f"({', '.join(task.references)}): the metrics computed against it are missing")
    limit = doc["task"].get("limit")
    if limit is not None:
        rep.notes.append(f"scored on the first {limit} samples only (--limit): `leaderboard build` refuses it")


def validate_files(paths, *, root: str | os.PathLike | None = None, allow_external_references: bool = False) -> list[Report]:
    """:func:`validate_file` for each path, plus the checks across files: one run under two
    seeds, or the same run twice."""
    from unlearnbench.leaderboard.comparability import run_identity

    reports = [validate_file(p, root=root, allow_external_references=allow_external_references) for p in paths]
    seen_run: dict[str, Report] = {}
    seen_id: dict[tuple, Report] = {}
    for rep in reports:
        doc = rep.result
        if not rep.ok or doc is None:
            continue
        key = (doc["task"]["name"], doc.get("run_id"))
        if key[1] is not None and key in seen_id:
            rep.problems.append(f"the same run as {seen_id[key].path} (run_id {key[1]}): a copy")
            continue
        seen_id[key] = rep
        ident = run_identity(doc)
        if ident is None:
            continue
        if ident in seen_run:
            other = seen_run[ident].result
            weights = (doc.get("model") or {}).get("weights_sha256") or ""
            rep.problems.append(f"the same run as {seen_run[ident].path} (same task, method and weights {weights[:12]}…) "
                                f"under seed {doc['seed']} vs {other['seed']}: a seed that changes nothing is not a "
                                "second seed; keep one of the two files")
        else:
            seen_run[ident] = rep
    return reports
