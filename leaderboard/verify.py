"""``leaderboard verify``: are a result's numbers true, for the task installed here?

On top of ``validate`` (``checks.py``), *verify*

1. rebuilds the task the result was scored on: the installed task of the same name and version,
   with the effective settings recorded in the result's task block (``task.settings``), and
   compares its spec sha256 with the recorded one (a renamed task, or other prompts, profile or
   generation settings, no longer match) and the sha256 of its evaluation data with the
   recorded ``data_sha256`` (another dataset copy or world scale no longer match);
2. re-derives every headline number: it feeds the stored per-sample rows and the (hash-checked)
   reference payload to the protocol's pure ``aggregate`` and compares each stored ``value``,
   ``n``, ``stderr`` and direction with the recomputed one within a relative tolerance of 1e-9;
3. fails when a metric the protocol computes from those rows is missing from the result (a
   headline number cannot be dropped because it looks bad).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.checks import Report, inside, validate_file, validate_files
from unlearnbench.leaderboard.comparability import short
from unlearnbench.results import read_jsonl

REL_TOL = 1e-9  # |stored - recomputed| <= REL_TOL * max(|stored|, |recomputed|) ...
ABS_TOL = 1e-12  # ... or <= ABS_TOL (values at or near zero)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare_metrics(stored: dict, recomputed: dict) -> list[str]:
    """Problems from comparing stored metric values with recomputed ones (missing ones included)."""
    problems = []
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
        problems.append(f"missing metric(s) {', '.join(missing)}: the task's protocol computes them from these "
                        "per-sample rows and references, so the result must report them")
    return problems


def _data_copies(doc: dict, data: list[str] | None) -> dict:
    """Local copies to read the task's data from: ``--data`` when given, else the folders the
    result records (``task.data_dir``) that exist here; the data hash then says whether they
    hold the data it was scored on."""
    from unlearnbench import local_data

    if data:
        return local_data.parse(data)
    recorded = doc["task"].get("data_dir") or {}
    return {(None if k == "task" else k): Path(v) for k, v in recorded.items() if Path(v).exists()}


def check_task_hashes(doc: dict, task, data: list[str] | None = None) -> list[str]:
    """The recorded spec and data hashes against those of the installed task (settings applied),
    its data read from ``data`` / the recorded local copies when there are some."""
    from unlearnbench import local_data
    from unlearnbench.cache import scale
    from unlearnbench.runner import get_protocol

    block, problems = doc["task"], []
    if block.get("spec_sha256") != task.spec_hash():
        problems.append(f"spec_sha256 {short(block.get('spec_sha256'))} is not the installed {task.name} spec's "
                        f"({short(task.spec_hash())}): scored with another spec (renamed task, other prompts, "
                        "profile or settings)")
    if block.get("scale") is not None and block["scale"] != scale():
        return problems + [f"scored at world scale {block['scale']!r}, this machine uses {scale()!r} "
                           f"(UNLEARNBENCH_SCALE): its data cannot be compared here"]
    if block.get("data_sha256") is None and doc.get("ingested") is not None:
        return problems  # imported from another tool: no data hash to compare
    try:
        with local_data.using(task, _data_copies(doc, data)):
            found = get_protocol(task).data_hash(task)
    except UserError as e:
        return problems + [f"cannot check data_sha256: the task's data does not load here ({e}; pass --data DIR "
                           "for a local copy)"]
    if found != block.get("data_sha256"):
        problems.append(f"data_sha256 {short(block.get('data_sha256'))} is not the installed task's evaluation data "
                        f"({short(found)}): scored on other data")
    return problems


def verify_file(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                allow_external_references: bool = False, allow_ingested: bool = False,
                data: list[str] | None = None) -> Report:
    """Validate, check the task hashes, then recompute every headline number from the rows and references.
    ``data``: ``--data`` local copies of a real task's dataset (default: the result's recorded ones)."""
    rep = validate_file(path, root=root, allow_external_references=allow_external_references)
    return _verify_valid(rep, root=root, allow_external_references=allow_external_references,
                         allow_ingested=allow_ingested, data=data)


def verify_files(paths, *, root: str | os.PathLike | None = None, allow_external_references: bool = False,
                 allow_ingested: bool = False, data: list[str] | None = None) -> list[Report]:
    """:func:`verify_file` for each path, with the checks across files of ``validate_files``."""
    reports = validate_files(paths, root=root, allow_external_references=allow_external_references)
    return [_verify_valid(r, root=root, allow_external_references=allow_external_references,
                          allow_ingested=allow_ingested, data=data) for r in reports]


def _verify_valid(rep: Report, *, root, allow_external_references: bool, allow_ingested: bool,
                  data: list[str] | None = None) -> Report:
    from unlearnbench.reference import load_reference
    from unlearnbench.runner import get_protocol, get_task, task_from_block

    if not rep.ok:
        return rep
    doc, p = rep.result, Path(rep.path)
    if doc["per_sample"] is None and not allow_ingested:
        rep.problems.append(f"cannot verify: ingested result (format {doc['ingested']['format']}) has no "
                            "per-sample values (pass --allow-ingested to accept it unverified)")
        return rep
    installed = get_task(doc["task"]["name"])
    if installed.version != doc["task"]["version"]:
        rep.problems.append(f"cannot verify: result is for {installed.name} version {doc['task']['version']}, the "
                            f"installed task is version {installed.version} (use the unlearnbench release that wrote it)")
        return rep
    task = task_from_block(doc["task"])  # the installed task as scored: its recorded settings applied
    rep.problems += check_task_hashes(doc, task, data)
    if doc["per_sample"] is None:
        return rep
    root_p = Path(root) if root is not None else p.parent
    payload = None
    if len(doc["references"]) > 1:
        rep.problems.append(f"cannot verify: {len(doc['references'])} reference artefacts; protocols take one")
        return rep
    try:
        for ref in doc["references"]:
            target, _ = inside(p.parent, ref["path"], root_p, allow_absolute=allow_external_references)
            payload, _info = load_reference(target, task)
        rows = read_jsonl(inside(p.parent, doc["per_sample"]["path"], root_p)[0])
        recomputed = get_protocol(task).aggregate(task, rows, payload)
    except UserError as e:
        rep.problems.append(f"recomputing failed: {e}")
        return rep
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        rep.problems.append(f"recomputing failed: the per-sample rows do not fit protocol {task.protocol} "
                            f"({type(e).__name__}: {e})")
        return rep
    rep.problems += compare_metrics(doc["metrics"], recomputed)
    return rep
