"""JSON Schemas of result v1 and leaderboard v1 files, and a validator that explains itself.

The schemas are data files beside this module (``result_v1.schema.json``,
``leaderboard_v1.schema.json``, JSON Schema draft 2020-12, every key with a description) so
that other tools can validate our files without importing Python. :func:`schema_problems`
returns one readable line per violation (``metrics.forget_quality.value: 'x' is not of type
'number', 'null'``) instead of jsonschema's multi-line reports.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from unlearnbench.errors import UserError

HERE = Path(__file__).resolve().parent
SCHEMA_FILES = {"result": "result_v1.schema.json", "leaderboard": "leaderboard_v1.schema.json"}
LEADERBOARD_SCHEMA = "unlearnbench/leaderboard/v1"


@functools.lru_cache(maxsize=None)
def load_schema(kind: str) -> dict:
    """The parsed schema ``kind`` (``result`` or ``leaderboard``)."""
    if kind not in SCHEMA_FILES:
        raise ValueError(f"unknown schema kind {kind!r}")
    return json.loads((HERE / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def schema_problems(doc: Any, kind: str = "result") -> list[str]:
    """One line per schema violation of ``doc`` (empty when valid), sorted by location."""
    if kind == "result" and isinstance(doc, dict) and doc.get("per_sample", 0) is None and "ingested" not in doc:
        # say what is wrong in words rather than through the schema's if/then
        extra = ["per_sample is null, which only an ingested result may have (it declares no 'ingested' provenance)"]
    else:
        extra = []
    errors = sorted(_validator(kind).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    out = []
    for e in errors:
        if e.validator == "required" and e.message.startswith("'ingested'") and extra:
            continue
        msg = e.message if len(e.message) <= 160 else e.message[:157] + "..."
        out.append(f"{_where(e)}: {msg}")
    return extra + out


def validate(doc: Any, kind: str = "result", name: str = "document") -> None:
    """Raise :class:`UserError` naming the first problems when ``doc`` violates the schema."""
    problems = schema_problems(doc, kind)
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserError(f"{name} is not a valid {kind} v1 file: {'; '.join(problems[:3])}{more}")


def walk_undocumented(schema: Any, where: str = "") -> list[str]:
    """Keys of ``properties`` / ``additionalProperties`` / ``items`` schemas lacking a description."""
    missing = []
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict) or ("description" not in sub and "$ref" not in sub):
                missing.append(f"{where}.{key}")
            missing += walk_undocumented(sub, f"{where}.{key}")
        for key in ("additionalProperties", "items"):
            sub = schema.get(key)
            if isinstance(sub, dict):
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{key}")
                missing += walk_undocumented(sub, f"{where}.{key}")
        for key, sub in (schema.get("$defs") or {}).items():
            missing += walk_undocumented(sub, f"{where}.$defs.{key}")
    return missing
