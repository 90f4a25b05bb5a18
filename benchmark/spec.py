"""Task specifications: frozen configuration, never code that calls a model.

A :class:`TaskSpec` says what a task is: modality, version, the splits it needs and where
they come from, the protocol that scores it (with settings) and the reference artefacts it
needs. Variants are ``dataclasses.replace`` of a base spec (as lm-evaluation-harness's
``TaskConfig``). ``version`` is bumped whenever prompts, splits or scoring change, and it is
stored in every result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

MODALITIES = ("llm", "diffusion", "classifier")


@dataclass(frozen=True)
class TaskSpec:
    """One registered task, e.g. ``tofu/forget10`` or ``digits/worst-10``.

    Attributes:
        name: registry name, ``family/variant``.
        modality: ``llm``, ``diffusion`` or ``classifier``.
        version: integer bumped on any change to data, prompts or scoring.
        protocol: name in ``PROTOCOLS``: the object that infers per-sample quantities and
            aggregates them into metrics.
        source: where the data comes from: ``{"kind": "hub", "path": "locuslab/TOFU"}``,
            ``{"kind": "local", "path": ...}`` or ``{"kind": "world", "name": "mini-tofu"}``.
        splits: role -> dataset split/config name (``{"forget": "forget10_perturbed", ...}``).
        settings: protocol settings (generation length, templates, metric options ...).
        metrics: metric names the protocol reports (for listings and leaderboard checks).
        references: names of reference artefacts the protocol needs (e.g. ``retain``).
        rank_by: metric the leaderboard ranks by, and whether higher is better.
        world: name in ``WORLDS`` for embedded tasks (target/retain checkpoints), else None.
        description: one line for listings.
    """

    name: str
    modality: str
    protocol: str
    version: int = 1
    source: Mapping[str, Any] = field(default_factory=dict)
    splits: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    rank_by: str | None = None
    world: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"task {self.name}: modality must be one of {MODALITIES}, got {self.modality!r}")

    def replace(self, **changes: Any) -> "TaskSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of this spec (changes whenever anything in it does)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
