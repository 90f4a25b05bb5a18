"""Where unlearnbench keeps what it builds: ``$UNLEARNBENCH_HOME`` (default ~/.cache/unlearnbench)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("UNLEARNBENCH_HOME") or Path.home() / ".cache" / "unlearnbench")


def cache_dir(*parts: str) -> Path:
    """A folder under the cache home (not created)."""
    return home().joinpath(*parts)


def scale() -> str:
    """World scale: ``test`` (seconds, unit tests) or ``default`` (demo, tables); from $UNLEARNBENCH_SCALE."""
    s = os.environ.get("UNLEARNBENCH_SCALE", "default")
    if s not in ("test", "default"):
        from unlearnbench.errors import UserError

        raise UserError(f"UNLEARNBENCH_SCALE must be 'test' or 'default', not {s!r}")
    return s
