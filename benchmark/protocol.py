"""The scoring protocol interface: infer once per sample, aggregate separately.

A protocol turns (task, model) into per-sample rows in one inference pass, and rows into
headline metrics in a separate, pure step. Keeping the two apart is what lets every metric
share one forward pass, and lets ``leaderboard verify`` recompute every number from the
stored rows and the hashed reference artefacts without the model.

Rows are flat JSON-able dicts with at least ``split`` and ``index``; other keys are the
per-sample quantities (e.g. ``loss_answer``, ``loss_paraphrased``, ``rouge_l_recall``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from unlearnbench.spec import TaskSpec


def rows_by_split(rows: list[dict]) -> dict[str, list[dict]]:
    """Per-sample rows grouped by ``split``, each group in ``index`` order."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["split"], []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r["index"])
    return out


class World(ABC):
    """An embedded world (registered in ``WORLDS``): generates data and trains its own models.

    Worlds cache everything under ``$UNLEARNBENCH_HOME`` (default ``~/.cache/unlearnbench``)
    keyed by the hash of the recipe, and build on first use with a progress bar.
    """

    @abstractmethod
    def checkpoint(self, task: TaskSpec, role: str):
        """Path of the model ``role`` (``target``, ``retain``, ...) for ``task``; built if missing."""

    @abstractmethod
    def reference(self, task: TaskSpec):
        """Path of the reference artefact for ``task`` (the retain model's statistics); built if missing."""

    def prepare(self, task: TaskSpec, roles: tuple[str, ...] = ("target", "retain")) -> dict:
        """Build (if missing) and return ``{role: checkpoint}``; worlds whose models train
        independently override this to build them side by side."""
        return {role: self.checkpoint(task, role) for role in roles}


class Protocol(ABC):
    """Base class of scoring protocols (register instances' classes in ``PROTOCOLS``)."""

    #: modality this protocol scores
    modality: str = ""

    @abstractmethod
    def infer(self, task: TaskSpec, model: Any, *, progress: bool = True) -> list[dict]:
        """Run the model once over every sample of every split; return per-sample rows."""

    @abstractmethod
    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        """Pure: per-sample rows (+ reference payload) -> ``{metric: metric_value(...)}``.

        Metrics that need a reference the caller did not give are left out (never guessed).
        """

    def training_data(self, task: TaskSpec) -> dict:
        """Data an unlearning method trains on: ``{"forget": ..., "retain": ..., "forget_id": ...}``
        in the modality's form (QA dicts for LLMs, tensors for classifiers, prompts for
        diffusion). ``forget_id`` is JSON-able and identifies the forget set (it is hashed
        into ``unlearn_config.json``)."""
        from unlearnbench.errors import UserError

        raise UserError(f"task {task.name} provides no training data for unlearning")

    def data_hash(self, task: TaskSpec) -> str | None:
        """sha256 identifying the evaluation data (recorded in results); None if unknown."""
        return None

    def preflight(self, task: TaskSpec) -> None:
        """Checks of the task's own files (a diffusion task's judges) that need no model; run by
        ``score`` and ``reference build`` before the model loads. Raises :class:`UserError`."""

    def write_attachments(self, task: TaskSpec, rows: list[dict], out_dir, stem: str, *,
                          save_images: bool = False) -> list[dict]:
        """Files for people beside the result (the diffusion protocol's contact sheets);
        their ``attachments`` entries. Called after ``infer``, before the result is written."""
        return []

    def reference_payload(self, task: TaskSpec, rows: list[dict]) -> dict:
        """What this model contributes when used as a reference (e.g. the retain model's
        per-sample forget truth ratios). Default: the rows themselves."""
        return {"rows": rows}
