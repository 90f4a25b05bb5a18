"""Import every folder once so that all registrations happen (tasks, metrics, methods ...)."""

from __future__ import annotations

import importlib

_FOLDERS = ("unlearnbench.metrics", "unlearnbench.tasks", "unlearnbench.baselines", "unlearnbench.leaderboard")
_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _FOLDERS:
        importlib.import_module(mod)
    _loaded = True
