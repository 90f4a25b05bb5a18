"""Which results may be pooled and ranked together, and one line saying why two may not.

Two results share a ranked table (a leaderboard *section*) only when everything that defines
the measurement is equal: task name and version, task spec hash (prompts, profile, generation
settings, thresholds), evaluation data hash, world scale, sample limit and the reference
artefacts (role + sha256) the metrics were computed against. The seeds of one *entry* must in
addition share the prompt template. Anything else is refused with one line naming the first
field that differs (``leaderboard build --separate`` keeps such results apart instead).

A *run* is identified by (task block, model weights sha256, method + config): two results of
one run under different seeds are one measurement counted twice, so they are refused too.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from unlearnbench.results import canonical_json_hash


def _task(key: str) -> Callable[[dict], Any]:
    return lambda doc: (doc.get("task") or {}).get(key)


def references_of(doc: dict) -> list:
    """The result's reference artefacts as sorted (role, sha256) pairs."""
    return sorted((r.get("role"), r.get("sha256")) for r in doc.get("references") or [])


def _template(doc: dict) -> Any:
    return (doc.get("model") or {}).get("template")


#: (name shown to the user, getter): equal within a section, in the order differences are named
SECTION_FIELDS: tuple[tuple[str, Callable[[dict], Any]], ...] = (
    ("task version", _task("version")),
    ("world scale", _task("scale")),
    ("sample limit", _task("limit")),
    ("profile", _task("profile")),
    ("spec_sha256", _task("spec_sha256")),
    ("data_sha256", _task("data_sha256")),
    ("reference artefacts", references_of),
)
#: equal between the seeds of one entry (on top of SECTION_FIELDS)
ENTRY_FIELDS: tuple[tuple[str, Callable[[dict], Any]], ...] = (("template", _template),)


def short(value: Any) -> str:
    """A value as it is named in a one-line message (hashes cut to 12 characters)."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value[:12] + "…" if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else value
    if isinstance(value, list) and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
        return "[" + ", ".join(f"{r} {short(h)}" for r, h in value) + "]" if value else "none"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _dict_difference(name: str, a: dict, b: dict) -> tuple[str, Any, Any]:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"{name}.{k}", a.get(k), b.get(k)
    return name, a, b


def first_difference(a: dict, b: dict, fields=SECTION_FIELDS) -> tuple[str, Any, Any] | None:
    """``(field, value in a, value in b)`` of the first field in which results ``a`` and ``b`` differ."""
    for name, get in fields:
        va, vb = get(a), get(b)
        if va != vb:
            sa, sb = _task("settings")(a), _task("settings")(b)
            if name == "spec_sha256" and isinstance(sa, dict) and isinstance(sb, dict) and sa != sb:
                return _dict_difference("settings", sa, sb)  # name the setting that changed the spec
            return name, va, vb
    return None


def signature(doc: dict, fields=SECTION_FIELDS) -> str:
    """Hash of the fields: equal signatures = comparable results."""
    return canonical_json_hash([get(doc) for _, get in fields])


def describe_difference(diff: tuple[str, Any, Any], path_a: str, path_b: str) -> str:
    field, va, vb = diff
    return f"{path_a} and {path_b} differ in {field} ({short(va)} vs {short(vb)})"


def variant_names(docs: list[dict], fields=SECTION_FIELDS) -> dict[str, str]:
    """For results kept apart: signature -> a short name of what sets its group apart
    (the fields whose values are not the same in every group)."""
    groups: dict[str, dict] = {}
    for d in docs:
        groups.setdefault(signature(d, fields), d)
    varying = [(n, g) for n, g in fields if len({json.dumps(g(d), sort_keys=True, default=str) for d in groups.values()}) > 1]
    return {sig: "; ".join(f"{n} {short(g(d))}" for n, g in varying) for sig, d in groups.items()}


def run_identity(doc: dict) -> str | None:
    """Hash of (task block, weights sha256, method): the run without its seed; None when the
    weights are unknown (ingested results)."""
    weights = (doc.get("model") or {}).get("weights_sha256")
    if not weights:
        return None
    return canonical_json_hash([doc.get("task"), weights, doc.get("method")])
