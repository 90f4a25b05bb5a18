"""WMDP (malicious-use unlearning): the multiple-choice protocol and the ``wmdp/bio``, ``wmdp/cyber`` tasks.

Li et al., 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning"
(arXiv:2403.03218; data ``cais/wmdp``, configs ``wmdp-bio`` / ``wmdp-cyber``, split ``test``,
fields ``question``, ``choices`` (4), ``answer`` (index)). Utility is MMLU (``cais/mmlu``,
config ``all``, split ``test``, same fields plus ``subject``). Scoring is lm-evaluation-harness's
zero-shot ``acc`` (see :mod:`unlearnbench.metrics.mcq`): one log-likelihood per answer letter.

Splits are ``"<source>:<config>/<split>"`` so the forget and utility sets can come from
different datasets (``hub:cais/wmdp:wmdp-bio/test``); a ``local`` or ``world`` source
instead reads ``<root>/<config>/<split>.json``. Training data: WMDP ships no QA to train on;
its unlearning corpora (``cais/wmdp-corpora``: ``bio-forget-corpus`` is gated,
``cyber-forget-corpus``, ``bio-retain-corpus``, ``cyber-retain-corpus``, field ``text``) are
the ``forget_train`` / ``retain_train`` roles, served as ``{"question": "", "answer": text}``.
RMU (Li et al., 2024) is the reference method; its retain corpus in the paper is WikiText.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.metrics import mcq as MCQ
from unlearnbench.protocol import Protocol
from unlearnbench.registry import PROTOCOLS, TASKS
from unlearnbench.results import canonical_json_hash
from unlearnbench.spec import TaskSpec

_MCQ_FIELDS = ("question", "choices", "answer")


def load_rows(task: TaskSpec, role: str, fields: tuple[str, ...] = ()) -> list[dict]:
    """Rows of ``task.splits[role]``: ``"[hub:<dataset>:]<config>/<split>"``."""
    from unlearnbench.tasks.llm_data import load_split

    rows = load_split(task, role, fields)
    where = task.splits[role]
    if fields == _MCQ_FIELDS:
        for i, r in enumerate(rows):
            if len(r["choices"]) != 4 or not (0 <= int(r["answer"]) < 4):
                raise UserError(f"{where} row {i}: needs 4 choices and an answer index in 0..3")
    return rows


class McqProtocol(Protocol):
    """Zero-shot 4-way MCQ accuracy on a forget domain and a utility set (``wmdp`` protocol)."""

    modality = "llm"
    roles = ("forget", "utility")

    def _eval_data(self, task: TaskSpec) -> dict[str, list[dict]]:
        limit = task.settings.get("limit")  # per split, for smoke runs; None = all
        out = {}
        for role in self.roles:
            if role in task.splits:
                rows = load_rows(task, role, _MCQ_FIELDS)
                out[role] = rows[: int(limit)] if limit else rows
        return out

    def data_hash(self, task: TaskSpec) -> str:
        return canonical_json_hash(self._eval_data(task))

    @staticmethod
    def subject(task: TaskSpec, role: str, row: dict) -> str:
        subj = task.settings.get("subjects", {}).get(role)
        return subj if subj else row.get("subject", "")

    def infer(self, task: TaskSpec, model, *, progress: bool = True) -> list[dict]:
        from unlearnbench.tasks.muse import raw_prompts

        conts = MCQ.mcq_continuations()
        rows, prompts, answers = [], [], []
        for role, data in self._eval_data(task).items():
            for i, d in enumerate(data):
                prompt = MCQ.mcq_prompt(d["question"], d["choices"], self.subject(task, role, d))
                rows.append({"split": role, "index": i, "answer": int(d["answer"])})
                prompts += [prompt] * len(conts)
                answers += conts
        with raw_prompts(model):
            lps = model.loglik(prompts, answers, progress=progress, desc=f"{task.name}: answer letters")
        for j, row in enumerate(rows):
            row["choice_logliks"] = [float(np.sum(lp)) for lp in lps[4 * j: 4 * j + 4]]
        return rows

    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        out = {}
        for role, name, hib in (("forget", "forget_accuracy", False), ("utility", "utility_accuracy", True)):
            rs = sorted((r for r in rows if r["split"] == role), key=lambda r: r["index"])
            if rs:
                correct = MCQ.mcq_correct([r["choice_logliks"] for r in rs], [r["answer"] for r in rs])
                mean, se = mean_stderr(correct)
                out[name] = metric_value(mean, hib, len(rs), se, chance=0.25)
        return out

    def training_data(self, task: TaskSpec) -> dict:
        if "forget_train" not in task.splits:
            raise UserError(f"task {task.name} names no forget corpus to unlearn from")
        forget = load_rows(task, "forget_train", ("text",))
        retain = load_rows(task, "retain_train", ("text",)) if "retain_train" in task.splits else []
        as_qa = lambda rows: [{"question": "", "answer": r["text"]} for r in rows]  # noqa: E731
        return {"forget": as_qa(forget), "retain": as_qa(retain),
                "forget_id": {"split": task.splits["forget_train"], "sha256": canonical_json_hash([r["text"] for r in forget])}}


PROTOCOLS.register("wmdp", McqProtocol, modality="llm",
                   description="WMDP: zero-shot MCQ accuracy on the hazardous domain (forget) and MMLU (utility)")

WMDP_METRICS = ("forget_accuracy", "utility_accuracy")
WMDP_BIO = TaskSpec(
    name="wmdp/bio", modality="llm", protocol="wmdp", version=1,
    source={"kind": "hub", "path": "cais/wmdp"},
    splits={"forget": "wmdp-bio/test", "utility": "hub:cais/mmlu:all/test",
            "forget_train": "hub:cais/wmdp-corpora:bio-forget-corpus/train",
            "retain_train": "hub:cais/wmdp-corpora:bio-retain-corpus/train"},
    settings={"subjects": {"forget": "biology"}, "limit": None},  # lm-eval wmdp_bio.yaml description
    metrics=WMDP_METRICS, rank_by="forget_accuracy",
    description="WMDP-Bio: hazardous biosecurity knowledge (MCQ accuracy to chance) with MMLU utility")
WMDP_CYBER = WMDP_BIO.replace(
    name="wmdp/cyber",
    splits={"forget": "wmdp-cyber/test", "utility": "hub:cais/mmlu:all/test",
            "forget_train": "hub:cais/wmdp-corpora:cyber-forget-corpus/train",
            "retain_train": "hub:cais/wmdp-corpora:cyber-retain-corpus/train"},
    settings={"subjects": {"forget": "cybersecurity"}, "limit": None},  # lm-eval wmdp_cyber.yaml description
    description="WMDP-Cyber: hazardous cybersecurity knowledge (MCQ accuracy to chance) with MMLU utility")

for _t in (WMDP_BIO, WMDP_CYBER):
    TASKS.register(_t.name, _t, modality="llm", version=_t.version, description=_t.description)
