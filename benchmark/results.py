"""Result files (schema ``unlearnbench/result/v1``), hashing and atomic writes.

One result file per (task, model, method, seed). Per-sample values sit beside it as JSON
lines so that every headline number can be re-derived (``leaderboard verify``). Every file
is written to a temporary name in the same folder and renamed into place, so a crash never
leaves a half-written result: the per-sample file is written first, the result file last.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from unlearnbench.errors import UserError

RESULT_SCHEMA = "unlearnbench/result/v1"
REFERENCE_SCHEMA = "unlearnbench/reference/v1"

_TRACKED_PACKAGES = (
    "unlearnbench", "torch", "transformers", "tokenizers", "datasets", "peft", "accelerate",
    "diffusers", "torchvision", "torchmetrics", "open_clip_torch", "nudenet", "numpy", "scipy",
    "scikit-learn", "rouge_score",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt")


# -- hashing ----------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike, suffixes: tuple[str, ...] | None = None) -> str:
    """Hash of a file, or of a folder's files (relative names + contents, sorted).

    With ``suffixes`` only files ending in one of them count (weights, not READMEs); when a
    folder has none of them, all files count.
    """
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    files = sorted(f for f in p.rglob("*") if f.is_file())
    if suffixes:
        chosen = [f for f in files if f.name.endswith(suffixes)]
        files = chosen or files
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(p)).encode() + b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def weights_sha256(path: str | os.PathLike) -> str:
    return sha256_tree(path, _WEIGHT_SUFFIXES)


def canonical_json_hash(obj: Any) -> str:
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode())


# -- atomic writes ----------------------------------------------------------------------
def _temp_beside(path: Path) -> tuple[int, str]:
    """Create a fresh temp file beside ``path`` with mode 0666 minus the umask (as ``open()`` would;
    ``tempfile.mkstemp`` makes 0600 files, which a web server cannot serve)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise OSError(f"cannot create a temporary file beside {path}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (fsync) and rename it into place.

    With ``overwrite=False`` the file is linked into place instead, which fails when ``path``
    exists (also when another process created it meanwhile): a :class:`UserError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file exists, even if another process just wrote it
            except FileExistsError:
                raise UserError(f"{path} exists; pass --overwrite to replace it") from None
            except OSError:  # no hard links on this file system: check, then rename
                if path.exists():
                    raise UserError(f"{path} exists; pass --overwrite to replace it") from None
                os.replace(tmp, path)
            if os.path.exists(tmp):
                os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n",
                             overwrite=overwrite)


def jsonl_text(rows: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in rows)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
    return rows


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} not found: {p}")
    if not p.is_file():
        raise UserError(f"{what} is not a file: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text: {p}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not valid JSON: {p} (line {e.lineno}: {e.msg})") from None


# -- environment and provenance ---------------------------------------------------------
def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str | None = None, dtype: str | None = None) -> dict:
    return {
        "packages": package_versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "device": device,
        "dtype": dtype,
        "unlearnbench_commit": git_commit(),
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s or "x"


# -- result files -----------------------------------------------------------------------
def result_stem(task: str, label: str, seed: int) -> str:
    return f"{slug(task)}__{slug(label)}__s{seed}"


def write_result(out_dir: str | os.PathLike, result: dict, rows: list[dict], stem: str, *, overwrite: bool = True,
                 log: bool = True) -> Path:
    """Write ``<stem>.samples.jsonl``, the run log ``<stem>.log`` and ``<stem>.result.json``
    atomically, in that order; return the result file.

    ``result['per_sample']`` is set to the relative file name, its sha256 and row count, and
    the log's entry is added to ``result['attachments']`` (role ``log``; see
    :mod:`unlearnbench.run_log`), in ``result`` itself: a caller that rewrites the result later
    (``attack`` adding its robustness block) keeps both. With ``overwrite=False`` nothing is
    written when the result file exists, and it is never replaced (:class:`UserError`); the
    samples and log of an unfinished run (no result file) are replaced.
    """
    from unlearnbench.preflight import check_result_free

    out = check_result_free(out_dir, stem, overwrite)
    text = jsonl_text(rows)
    samples = atomic_write_text(out / f"{stem}.samples.jsonl", text)
    if log:
        from unlearnbench.run_log import with_attachment, write_log

        result["attachments"] = with_attachment(result, write_log(out, stem, result))
    result["per_sample"] = {"path": samples.name, "sha256": sha256_bytes(text.encode()), "rows": len(rows)}
    return atomic_write_json(out / f"{stem}.result.json", result, overwrite=overwrite)


def run_id(result: Mapping[str, Any]) -> str:
    """The run's identity: a short hash of (task block, model weights sha256, method, seed).

    ``leaderboard validate`` recomputes it, so a result whose task, weights, method or seed
    was edited after the run no longer matches its ``run_id``.
    """
    return canonical_json_hash([result.get("task"), (result.get("model") or {}).get("weights_sha256"),
                                result.get("method"), result.get("seed")])[:16]


def load_result(path: str | os.PathLike) -> dict:
    data = read_json(path, "result file")
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise UserError(f"not an {RESULT_SCHEMA} file: {path}")
    return data


def load_samples(result_path: str | os.PathLike, result: dict | None = None) -> list[dict]:
    result = result or load_result(result_path)
    rel = (result.get("per_sample") or {}).get("path")
    if not rel:
        raise UserError(f"{result_path}: result names no per-sample file")
    p = Path(result_path).parent / rel
    if not p.exists():
        raise UserError(f"{result_path}: per-sample file missing: {p}")
    return read_jsonl(p)
