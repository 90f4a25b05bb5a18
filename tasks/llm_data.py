"""Loading LLM task data by source kind: the hub (``datasets``), a local folder, or a world.

Every split is a list of plain dicts. A ``local`` source is a folder with one
``<split>.json`` (a JSON list or JSON lines) per split name, in the hub dataset's schema, so
a real benchmark can be pointed at a local copy without code changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from unlearnbench.errors import UserError
from unlearnbench.results import canonical_json_hash
from unlearnbench.spec import TaskSpec


def _read_local(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    text = path.read_text(encoding="utf-8").strip()
    try:
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise UserError(f"data file {path} is not JSON or JSON lines ({e.msg})") from None


def _from_hub(path: str, config: str, split: str = "train") -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise UserError("loading hub datasets needs the `datasets` package: pip install 'unlearnbench[llm]'") from None
    try:
        ds = datasets.load_dataset(path, config, split=split)
    except Exception as e:  # noqa: BLE001 - offline, missing config ... all user-facing
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot load {path} ({config}) from the hub: {first}") from None
    return [dict(r) for r in ds]


def load_split(task: TaskSpec, role: str, required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of the split playing ``role`` in ``task`` (e.g. ``forget``), schema-checked.

    Split names: ``"<config>"`` (TOFU: a hub config, split ``task.source["split"]``, locally
    ``<config>.json``), ``"<config>/<split>"`` (MUSE, WMDP: locally ``<config>/<split>.json``),
    optionally prefixed ``"hub:<dataset>:"`` to read another hub dataset (WMDP's MMLU utility set).
    """
    if role not in task.splits:
        raise UserError(f"task {task.name} has no {role!r} split")
    name = task.splits[role]
    dataset = None
    if name.startswith("hub:"):
        _, dataset, name = name.split(":", 2)
    config, _, split = name.partition("/")
    kind = task.source.get("kind")
    if dataset is not None or kind == "hub":
        dataset = dataset or task.source["path"]
        rows = _from_hub(dataset, config, split or task.source.get("split", "train"))
        where = f"{dataset}:{name}"
    elif kind in ("local", "world"):
        if kind == "local":
            root = Path(task.source["path"])
        else:
            from unlearnbench.registry import WORLDS

            root = Path(WORLDS.get(task.world).data_dir(task))
        f = root / f"{name}.json"
        rows, where = _read_local(f), str(f)
    else:
        raise UserError(f"task {task.name}: unknown data source kind {kind!r}")
    if not rows:
        raise UserError(f"split {where} is empty")
    for key in required:
        if key not in rows[0]:
            raise UserError(f"split {where} lacks the field {key!r} (has {', '.join(sorted(rows[0]))})")
    return rows


def data_hash(splits: dict[str, list[dict]]) -> str:
    return canonical_json_hash(splits)
