"""The run log: a text file beside every result (command line, versions, timings, warnings).

The CLI opens one :class:`RunLog` per command (:func:`run_log`); the runner adds timed
events to it (:func:`note`), and Python warnings and library log records of level WARNING
or above are collected while it is open. When a result is written, :func:`write_log`
writes ``<stem>.log`` beside it: the command line, working directory, package versions,
thread settings, the events since the previous result of the same command (a table writes
one result per cell) with their times, the result's timings, and the warnings; it returns the
``attachments`` entry (role ``log``, path relative to the result's folder, sha256) that the
result lists. A result written from the Python API (no command open) gets a log as well,
with the events of that call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator

_CURRENT: "RunLog | None" = None


class _Collect(logging.Handler):
    def __init__(self, log: "RunLog"):
        super().__init__(level=logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"{record.name}: {record.getMessage()}"
            self.log.warn(message)
            if all(h is self for h in logging.getLogger().handlers):  # what logging's last resort would print
                print(f"warning: {message}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - a log handler must never raise
            pass


class RunLog:
    """Events and warnings of one command (or one API call)."""

    def __init__(self, argv: list[str] | None = None):
        self.argv = list(argv) if argv is not None else None
        self.t0 = time.perf_counter()
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.events: list[tuple[float, str]] = []
        self.warnings: list[tuple[float, str]] = []
        self._mark = (0, 0)  # events / warnings already written to an earlier result's log

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def note(self, message: str) -> None:
        self.events.append((self.elapsed(), message))

    def warn(self, message: str) -> None:
        self.warnings.append((self.elapsed(), message.replace("\n", " ")))

    def text(self, result: dict | None = None) -> str:
        from unlearnbench.results import package_versions

        argv = self.argv if self.argv is not None else sys.argv
        env = {k: v for k, v in sorted(os.environ.items())
               if k.startswith(("UNLEARNBENCH_", "HF_HUB_OFFLINE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE"))}
        lines = [f"# unlearnbench run log (started {self.started})",
                 "command: " + " ".join(_quote(a) for a in (["unlearnbench", *argv] if self.argv is not None else argv)),
                 f"cwd: {os.getcwd()}", f"platform: {platform.platform()}; cpus: {os.cpu_count()}",
                 "versions: " + ", ".join(f"{k} {v}" for k, v in package_versions().items()),
                 "environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "(nothing set)")]
        try:
            import torch

            lines.append(f"torch threads: {torch.get_num_threads()}")
        except ImportError:  # pragma: no cover
            pass
        ev, wn = self._mark
        lines.append("events:")
        lines += [f"  {t:9.2f} s  {m}" for t, m in self.events[ev:]] or ["  (none)"]
        if result is not None and result.get("timings"):
            lines.append("timings: " + ", ".join(f"{k} {v:.2f}" for k, v in result["timings"].items()))
        lines.append("warnings:")
        lines += [f"  {t:9.2f} s  {m}" for t, m in self.warnings[wn:]] or ["  (none)"]
        return "\n".join(lines) + "\n"

    def mark(self) -> None:
        self._mark = (len(self.events), len(self.warnings))


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(str(arg))


@contextlib.contextmanager
def run_log(argv: list[str] | None = None) -> Iterator[RunLog]:
    """Open a log for the duration of a command: collects warnings and library log records."""
    global _CURRENT
    outer, log = _CURRENT, RunLog(argv)
    handler = _Collect(log)
    root = logging.getLogger()
    root.addHandler(handler)
    old_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        log.warn(f"{category.__name__}: {message} ({Path(filename).name}:{lineno})")
        old_show(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    _CURRENT = log
    try:
        yield log
    finally:
        _CURRENT = outer
        warnings.showwarning = old_show
        root.removeHandler(handler)


@contextlib.contextmanager
def ensure_log() -> Iterator[RunLog]:
    """The open log, or a new one for the duration of the block (a call from the Python API)."""
    if _CURRENT is not None:
        yield _CURRENT
        return
    with run_log() as log:
        yield log


def current() -> RunLog | None:
    return _CURRENT


def warn(message: str) -> None:
    """A warning for the user: one line on stderr, and a line in the open log."""
    print(f"unlearnbench: warning: {message}", file=sys.stderr)
    if _CURRENT is not None:
        _CURRENT.warn(message)


def note(message: str) -> None:
    """Add a timed event to the open log (nothing when none is open)."""
    if _CURRENT is not None:
        _CURRENT.note(message)


def write_log(out_dir: str | os.PathLike, stem: str, result: dict, log: RunLog | None = None) -> dict:
    """Write ``<stem>.log`` in ``out_dir`` (atomically); return its ``attachments`` entry."""
    from unlearnbench.results import atomic_write_text, sha256_bytes

    log = log or _CURRENT or RunLog()
    text = log.text(result)
    path = atomic_write_text(Path(out_dir) / f"{stem}.log", text)
    log.mark()
    return {"role": "log", "path": path.name, "sha256": sha256_bytes(text.encode())}


def with_attachment(result: dict, entry: dict) -> list[dict]:
    """``result['attachments']`` with ``entry`` added (replacing one of the same role and path)."""
    kept = [a for a in result.get("attachments") or [] if (a.get("role"), a.get("path")) != (entry["role"], entry["path"])]
    return kept + [entry]
