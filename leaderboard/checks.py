"""``leaderboard validate`` and ``leaderboard verify``: is a result well-formed, and are its numbers true?

*validate* checks a result v1 file without running anything heavy: the schema, that its task
and metrics are registered, that the per-sample file and the reference artefacts it names sit
inside the submission folder (no ``../x``, no absolute paths) and hash to the recorded sha256.

*verify* re-derives every headline number: it loads the task's protocol, feeds the stored
per-sample rows and the (hash-checked) reference payload to ``protocol.aggregate`` (a pure
function) and compares each stored ``value``, ``n`` and ``stderr`` with the recomputed one
within a relative tolerance of 1e-9. Every problem is one line ``<file>: <what>``; the CLI
prints them all and exits 2 if there is any.

The *submission folder* is the result file's folder unless ``root`` names another (for
example the output folder of ``unlearnbench table``). Results scored locally against a world
reference record its absolute cache path; ``allow_external_references=True`` (``--local``)
accepts that on the machine that made them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.schema import schema_problems
from unlearnbench.results import RESULT_SCHEMA, read_json, read_jsonl, sha256_file

REL_TOL = 1e-9  # verify: |stored - recomputed| <= REL_TOL * max(|stored|, |recomputed|) ...
ABS_TOL = 1e-12  # ... or <= ABS_TOL (values at or near zero)


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

    # reference artefacts
    for i, ref in enumerate(doc["references"]):
        target, err = inside(base, ref["path"], root_p, allow_absolute=allow_external_references)
        if err:
            hint = " (pass --local to accept it for results scored on this machine)" if "absolute" in err else ""
            rep.problems.append(f"references[{i}] ({ref['role']}): {err}{hint}")
        elif not target.is_file():
            rep.problems.append(f"reference artefact missing: {ref['path']}")
        elif sha256_file(target) != ref["sha256"]:
            rep.problems.append(f"reference artefact {ref['path']} does not match its recorded sha256")
    return rep


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare_metrics(stored: dict, recomputed: dict) -> tuple[list[str], list[str]]:
    """Problems and notes from comparing stored metric values with recomputed ones."""
    problems, notes = [], []
    for name, m in stored.items():
        r = recomputed.get(name)
        if r is None:
            problems.append(f"metric {name} cannot be recomputed from the per-sample rows and references")
            continue
        if not _close(m.get("value"), r.get("value")):
            problems.append(f"metric {name}: stored value {m.get('value')!r} != recomputed {r.get('value')!r}")
        if m.get("n") != r.get("n"):
            problems.append(f"metric {name}: stored n {m.get('n')!r} != recomputed {r.get('n')!r}")
        if not _close(m.get("stderr"), r.get("stderr")):
            problems.append(f"metric {name}: stored stderr {m.get('stderr')!r} != recomputed {r.get('stderr')!r}")
        if bool(m.get("higher_is_better")) != bool(r.get("higher_is_better")):
            problems.append(f"metric {name}: stored higher_is_better {m.get('higher_is_better')} != protocol's")
    missing = sorted(set(recomputed) - set(stored))
    if missing:
        notes.append(f"the protocol also computes {', '.join(missing)} (not in the result)")
    return problems, notes


def verify_file(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                allow_external_references: bool = False, allow_ingested: bool = False) -> Report:
    """Validate, then recompute every headline number from the per-sample rows and references."""
    from unlearnbench.reference import load_reference
    from unlearnbench.runner import get_protocol, task_from_block

    rep = validate_file(path, root=root, allow_external_references=allow_external_references)
    if not rep.ok:
        return rep
    doc, p = rep.result, Path(path)
    if doc["per_sample"] is None:
        if not allow_ingested:
            rep.problems.append(f"cannot verify: ingested result (format {doc['ingested']['format']}) has no "
                                "per-sample values (pass --allow-ingested to accept it unverified)")
        return rep
    task = task_from_block(doc["task"])  # the registered task with the settings it was scored with
    if task.version != doc["task"]["version"]:
        rep.problems.append(f"cannot verify: result is for {task.name} version {doc['task']['version']}, the installed "
                            f"task is version {task.version} (use the unlearnbench release that wrote it)")
        return rep
    root_p = Path(root) if root is not None else p.parent
    payload = None
    if len(doc["references"]) > 1:
        rep.problems.append(f"cannot verify: {len(doc['references'])} reference artefacts; protocols take one")
        return rep
    for ref in doc["references"]:
        target, _ = inside(p.parent, ref["path"], root_p, allow_absolute=allow_external_references)
        try:
            payload, _info = load_reference(target, task)
        except UserError as e:
            rep.problems.append(f"reference {ref['path']}: {e}")
            return rep
    try:
        rows = read_jsonl(inside(p.parent, doc["per_sample"]["path"], root_p)[0])
    except UserError as e:
        rep.problems.append(str(e))
        return rep
    try:
        recomputed = get_protocol(task).aggregate(task, rows, payload)
    except UserError as e:
        rep.problems.append(f"recomputing failed: {e}")
        return rep
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        rep.problems.append(f"recomputing failed: the per-sample rows do not fit protocol {task.protocol} "
                            f"({type(e).__name__}: {e})")
        return rep
    problems, notes = compare_metrics(doc["metrics"], recomputed)
    rep.problems += problems
    rep.notes += notes
    return rep
