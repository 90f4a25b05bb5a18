"""One generic registry for tasks, metrics, methods, architectures, protocols, worlds, attacks.

Modelled on lm-evaluation-harness's ``lm_eval/api/registry.py``: entries are registered with
a decorator or as a lazy ``"module:attr"`` string so heavy backends import only when used;
registering a name twice is an error; an unknown name raises a :class:`UserError` with a
"did you mean" suggestion. Families of names (``digits/class-<k>``) register a pattern and a
factory that builds the entry from the matched groups.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from unlearnbench.errors import UserError


@dataclass(frozen=True)
class _Pattern:
    display: str  # e.g. "digits/class-<k>"
    regex: re.Pattern
    factory: Callable[..., Any]
    meta: dict


class Registry:
    """A named mapping with lazy entries, duplicate protection and helpful lookup errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._meta: dict[str, dict] = {}
        self._patterns: list[_Pattern] = []

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, obj: Any = None, /, **meta: Any):
        """Register ``obj`` under ``name``; without ``obj`` works as a decorator.

        ``obj`` may be a ``"package.module:attr"`` string, imported on first :meth:`get`.
        ``meta`` (modality, description, ...) is shown by listings without importing ``obj``.
        """

        def _add(target: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = target
            self._meta[name] = dict(meta)
            return target

        if obj is None:
            return _add
        return _add(obj)

    def register_pattern(self, display: str, regex: str, factory: Callable[..., Any], **meta: Any) -> None:
        """Register a family: names matching ``regex`` are built by ``factory(**groupdict)``."""
        self._patterns.append(_Pattern(display, re.compile(regex), factory, dict(meta)))

    # -- lookup -------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        if name in self._entries:
            obj = self._entries[name]
            if isinstance(obj, str) and ":" in obj:
                module, attr = obj.split(":", 1)
                obj = getattr(importlib.import_module(module), attr)
                self._entries[name] = obj
            return obj
        for pat in self._patterns:
            m = pat.regex.fullmatch(name)
            if m:
                obj = pat.factory(**m.groupdict())
                return obj
        raise UserError(self._unknown_message(name))

    def __contains__(self, name: str) -> bool:
        return name in self._entries or any(p.regex.fullmatch(name) for p in self._patterns)

    def names(self) -> list[str]:
        """Registered names, with families shown by their display form (``digits/class-<k>``)."""
        return sorted(self._entries) + sorted(p.display for p in self._patterns)

    def meta(self, name: str) -> dict:
        if name in self._meta:
            return dict(self._meta[name])
        for pat in self._patterns:
            if pat.display == name or pat.regex.fullmatch(name):
                return dict(pat.meta)
        raise UserError(self._unknown_message(name))

    def items(self) -> Iterator[tuple[str, dict]]:
        for name in self.names():
            yield name, self.meta(name)

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if self.kind in LISTED:  # a command lists them
            return f"unknown {self.kind} {name!r}{hint} (see `unlearnbench {self.kind}s`)"
        names = self.names()
        known = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        return f"unknown {self.kind} {name!r}{hint} (known: {known or 'none'})"


#: registry kinds with a listing command (``unlearnbench tasks`` ...); other lookups name the known entries
LISTED = ("task", "metric", "method", "attack")

# The registries of the whole suite. Entries are added by the modules of each folder,
# imported through ``unlearnbench.catalog.load_all()``.
TASKS = Registry("task")
METRICS = Registry("metric")
METHODS = Registry("method")
ARCHITECTURES = Registry("architecture")
PROTOCOLS = Registry("protocol")
WORLDS = Registry("world")
ATTACKS = Registry("attack")
INGESTERS = Registry("ingester")
MODEL_LOADERS = Registry("model loader")

# The LLM adapter registers lazily so listings never import transformers.
MODEL_LOADERS.register("llm", "unlearnbench.causal_lm:load_causal_lm")
