"""Loading LLM task data by source kind: the hub (``datasets``), a local folder, or a world.

Every split is a list of plain dicts. A ``local`` source is a folder with one
``<split>.json`` (a JSON list or JSON lines) per split name, in the hub dataset's schema, so
a real benchmark can be pointed at a local copy without code changes.
"""

from __future__ import annotations

import contextlib
import functools
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
    return [dict(r) for r in _load_dataset(path, config, split)]


@functools.lru_cache(maxsize=64)
def _cached_folder(path: str, config: str, split: str, stamp: float) -> tuple[dict, ...]:
    """A local copy's rows, cached per file state (a task checks its data before the model
    loads, then scores it). ``datasets`` builds it in a fresh cache folder: its own cache names
    a local dataset by folder name and config, so two copies in folders of the same name (two
    ``data/`` folders) would otherwise read each other's rows."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="unlearnbench-data-") as tmp:
        return _load_dataset(path, config, split, cache_dir=tmp)


def _load_dataset(path: str, config: str, split: str, **kw) -> tuple[dict, ...]:
    """``datasets.load_dataset(path, config, split=split)`` rows."""
    try:
        import datasets
    except ImportError:
        raise UserError("loading hub datasets needs the `datasets` package: pip install 'unlearnbench[llm]'") from None
    where = "the hub" if not Path(path).exists() else "a local copy"
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one line per problem, no bars for small splits
    try:
        ds = datasets.load_dataset(path, config, split=split, **kw)
    except Exception as e:  # noqa: BLE001 - offline, missing config ... all user-facing
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot load {path} ({config}, split {split}) from {where}: {first}") from None
    finally:
        if bars:
            datasets.enable_progress_bars()
    return tuple(dict(r) for r in ds)  # materialised before a temporary cache folder goes


# -- local copies (``--data``) -----------------------------------------------------------------
_LOCAL: dict[str, Path] = {}


def has_local_copy(dataset: str) -> bool:
    """True while ``--data`` serves ``dataset`` (a hub id) from a local folder."""
    return dataset in _LOCAL


@contextlib.contextmanager
def local_copies(mapping: dict[str, Path]):
    """Read the datasets named in ``mapping`` (hub id -> folder) from local folders meanwhile."""
    old = dict(_LOCAL)
    _LOCAL.update({k: Path(v) for k, v in mapping.items()})
    try:
        yield
    finally:
        _LOCAL.clear()
        _LOCAL.update(old)


def declared_configs(folder: Path) -> list[str] | None:
    """Config names a hub-layout ``README.md`` declares (None when it declares none)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    import yaml

    try:
        head = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{readme}: the YAML header is not valid ({e})") from None
    configs = head.get("configs") if isinstance(head, dict) else None
    if not configs:
        return None
    return [c.get("config_name", "default") for c in configs if isinstance(c, dict)]


def _from_folder(folder: Path, config: str, split: str) -> tuple[list[dict], str]:
    if not folder.is_dir():
        raise UserError(f"--data: {folder} is not a folder")
    configs = declared_configs(folder)
    if configs is not None:
        if config not in configs:
            raise UserError(f"{folder} has no config {config!r} (its README.md declares {', '.join(configs)})")
        stamp = max(f.stat().st_mtime for f in folder.iterdir())
        rows = [dict(r) for r in _cached_folder(str(folder.resolve()), config, split, stamp)]
        return rows, f"{folder} ({config}/{split})"
    for f in (folder / f"{config}.json", folder / config / f"{split}.json"):
        if f.is_file():
            return _read_local(f), str(f)
    raise UserError(f"{folder} has no config {config!r}: expected a README.md declaring configs, "
                    f"{config}.json or {config}/{split}.json")


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
        split = split or task.source.get("split", "train")
        if dataset in _LOCAL:
            rows, where = _from_folder(_LOCAL[dataset], config, split)
        else:
            rows = _from_hub(dataset, config, split)
            where = f"{dataset}:{name}"
    elif kind in ("local", "world"):
        if kind == "local":
            root = Path(task.source["path"])
            if str(task.source["path"]) in _LOCAL:  # --data: another copy of this task's folder
                rows, where = _from_folder(_LOCAL[str(task.source["path"])], config, split or "train")
                return _checked(rows, where, required)
        else:
            from unlearnbench.registry import WORLDS

            root = Path(WORLDS.get(task.world).data_dir(task))
        f = root / f"{name}.json"
        rows, where = _read_local(f), str(f)
    else:
        raise UserError(f"task {task.name}: unknown data source kind {kind!r}")
    return _checked(rows, where, required)


def _checked(rows: list[dict], where: str, required: tuple[str, ...]) -> list[dict]:
    if not rows:
        raise UserError(f"split {where} is empty")
    for key in required:
        if key not in rows[0]:
            raise UserError(f"split {where} lacks the field {key!r} (has {', '.join(sorted(rows[0]))})")
    return rows


def data_hash(splits: dict[str, list[dict]]) -> str:
    return canonical_json_hash(splits)
