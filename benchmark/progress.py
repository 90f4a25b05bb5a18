"""Progress bars and ``--quiet``: one switch for the suite's bars and the libraries' own.

Every step that can take more than a few seconds (world builds, training loops, inference
passes, table cells) shows a tqdm bar on stderr. ``--quiet`` turns all of them off through
:func:`set_quiet`, which

* sets ``$UNLEARNBENCH_QUIET=1`` (read by :func:`quiet`; world builds that run in spawned
  processes inherit it), and
* turns off the bars of Hugging Face libraries: ``$HF_HUB_DISABLE_PROGRESS_BARS`` and
  ``$HF_DATASETS_DISABLE_PROGRESS_BARS`` for libraries imported later (transformers reads
  the former at import: its "Loading weights" / "Writing model shards" bars), and the
  libraries' own ``disable_progress_bar()`` for those already imported.
  :func:`silence_libraries` does the latter again after a loader imports diffusers, whose
  bars no environment variable controls.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

QUIET_ENV = "UNLEARNBENCH_QUIET"
_LIBRARY_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def quiet() -> bool:
    """True when ``--quiet`` (or ``$UNLEARNBENCH_QUIET``) asked for no progress output."""
    return os.environ.get(QUIET_ENV, "").strip() not in ("", "0")


def set_quiet(on: bool = True) -> None:
    """Silence (or not) every progress bar of this process and of the processes it spawns."""
    if not on:
        return
    os.environ[QUIET_ENV] = "1"
    for name in _LIBRARY_ENV:
        os.environ[name] = "1"
    silence_libraries()


@contextlib.contextmanager
def quiet_scope(on: bool) -> Iterator[None]:
    """:func:`set_quiet` for a block (one command); the environment is restored afterwards."""
    keys = (QUIET_ENV, *_LIBRARY_ENV)
    before = {k: os.environ.get(k) for k in keys}
    set_quiet(on)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        while _RESTORE:  # the libraries' bars that were on before
            _RESTORE.pop()()


def silence_libraries() -> None:
    """When quiet, turn off the bars of transformers / diffusers / huggingface_hub / datasets
    that are already imported (call again after importing one of them)."""
    if not quiet():
        return
    for module, prefix, off, on, state, inverted in _LIBRARY_SWITCHES:
        if module not in sys.modules:
            continue
        try:
            switch = _attr(sys.modules[module], prefix)
            if bool(getattr(switch, state)()) != inverted:  # its bars are on
                getattr(switch, off)()
                _RESTORE.append(getattr(switch, on))
        except (AttributeError, ImportError):  # an older or newer layout: its bars stay on
            continue


def _attr(obj: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        obj = getattr(obj, part)
    return obj


# (module, where its switches are, off, on, state, state means "off"); re-enabled when a quiet command ends
_LIBRARY_SWITCHES = (
    ("transformers", "utils.logging", "disable_progress_bar", "enable_progress_bar", "is_progress_bar_enabled", False),
    ("diffusers", "utils.logging", "disable_progress_bar", "enable_progress_bar", "is_progress_bar_enabled", False),
    ("huggingface_hub", "utils", "disable_progress_bars", "enable_progress_bars", "are_progress_bars_disabled", True),
    ("datasets", "", "disable_progress_bars", "enable_progress_bars", "is_progress_bar_enabled", False),
)
_RESTORE: list = []


def enabled(progress: bool = True) -> bool:
    """Whether a bar asked for with ``progress`` should show (never when quiet)."""
    return bool(progress) and not quiet()


def bar(total: Any = None, desc: str = "", unit: str = "it", *, progress: bool = True, **kw: Any):
    """A tqdm bar on stderr that disappears when done; disabled when quiet or ``progress`` is off.

    ``total`` is a count (update the bar yourself) or an iterable to wrap."""
    from tqdm.auto import tqdm

    kw.setdefault("leave", False)
    if total is not None and not isinstance(total, int):
        kw["iterable"] = total
        total = None
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled(progress), **kw)
