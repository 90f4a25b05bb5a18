"""Local paths first, hub ids second, and a hub that cannot be reached fails in one line at once.

A checkpoint or dataset string is resolved as follows (:func:`locate`):

1. an existing file or folder is local;
2. a string that cannot be a hub id (absolute, ``./`` or ``~`` prefixed, more than one ``/``,
   a weights-file suffix), or whose first part is an existing local folder (``runs/npo``
   when ``runs/`` exists), is a local path that does not exist: "not found";
3. anything else of the form ``org/name`` is a hub id.

Before a hub id is loaded, :func:`require` checks that it is either in the local Hugging
Face cache or that the hub answers a TCP connection within :data:`PROBE_TIMEOUT` seconds;
otherwise it raises one :class:`UserError` line instead of letting ``huggingface_hub`` retry
for a minute. ``$HF_HUB_OFFLINE=1`` skips the probe (only cached repos load). When a repo
is cached and the hub is unreachable, the process switches to offline mode so the libraries
read the cache without retrying.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from unlearnbench.errors import UserError

#: seconds to wait for the hub to accept a connection
PROBE_TIMEOUT = 3.0
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".json")
_TRUE = ("1", "true", "yes", "on")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def locate(path: str) -> tuple[str, str]:
    """``("local", path)`` for an existing path, ``("missing", path)`` for a local path that does
    not exist, ``("hub", repo_id)`` for something that can only be a hub id."""
    p = Path(path).expanduser()
    if p.exists():
        return "local", str(p)
    if not _HUB_ID.fullmatch(path) or path.endswith(_WEIGHT_SUFFIXES) or ".." in path:
        return "missing", path
    if Path(path.split("/")[0]).is_dir():  # runs/npo with runs/ present: a typo, not a hub id
        return "missing", path
    return "hub", path


def offline(repo_type: str = "model") -> bool:
    """Whether the libraries that load ``repo_type`` repos are told to stay offline."""
    keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if repo_type == "dataset" else ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in keys)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


@functools.lru_cache(maxsize=None)
def _probe(url: str, timeout: float) -> str | None:
    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname or "", port), timeout=timeout).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def unreachable() -> str | None:
    """None when the hub accepts a connection, else why not (one probe per process)."""
    return _probe(endpoint(), PROBE_TIMEOUT)


def cached(repo_id: str, repo_type: str = "model") -> bool:
    """Whether ``repo_id`` has a snapshot in the Hugging Face cache (or, for datasets, in
    ``datasets``' own cache)."""
    try:
        from huggingface_hub import constants

        hub_cache = Path(constants.HF_HUB_CACHE)
    except ImportError:
        hub_cache = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    snapshots = hub_cache / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    if repo_type == "dataset":
        root = os.environ.get("HF_DATASETS_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "datasets"
        folder = Path(root) / repo_id.replace("/", "___")
        return folder.is_dir() and any(folder.iterdir())
    return False


def go_offline() -> None:
    """Make huggingface_hub, transformers and datasets read only their caches from now on."""
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[k] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True


def require(repo_id: str, repo_type: str = "model", what: str = "model") -> None:
    """Fail in one line unless hub repo ``repo_id`` can be loaded (cached, or the hub is reachable)."""
    if cached(repo_id, repo_type):
        if not offline(repo_type) and unreachable():
            go_offline()
        return
    where = "not a local path and not in" if repo_type == "model" else "not in"
    if offline(repo_type):
        raise UserError(f"{what} {repo_id!r} is {where} the Hugging Face cache, and hub downloads are off "
                        "(HF_HUB_OFFLINE=1)")
    reason = unreachable()
    if reason:
        raise UserError(f"{what} {repo_id!r} is {where} the Hugging Face cache, and {endpoint()} cannot be "
                        f"reached ({reason})")


def require_local_or_hub(path: str, what: str = "checkpoint", repo_type: str = "model") -> tuple[str, str]:
    """:func:`locate`, then "not found" for a missing local path and :func:`require` for a hub id."""
    kind, where = locate(path)
    if kind == "missing":
        raise UserError(f"{what} not found: {path}")
    if kind == "hub":
        require(where, repo_type, what)
    return kind, where
