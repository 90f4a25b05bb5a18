"""MUSE (copyright unlearning): the protocol and the real ``muse/news`` and ``muse/books`` tasks.

Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models"
(arXiv:2407.06460; data ``muse-bench/MUSE-News`` and ``muse-bench/MUSE-Books``; code
``swj0419/muse_bench``). Splits are named ``"<config>/<split>"`` of the hub dataset:

==================  =========================  ======================================
role                MUSE config/split          fields
==================  =========================  ======================================
``verbmem``         ``verbmem/forget``         ``prompt``, ``gt``
``knowmem_forget``  ``knowmem/forget_qa``      ``question``, ``answer``
                    (+ ``forget_qa_icl``)
``knowmem_retain``  ``knowmem/retain_qa``      ``question``, ``answer``
                    (+ ``retain_qa_icl``)
``privleak_forget`` ``privleak/forget``        ``text``
``privleak_holdout`` ``privleak/holdout``      ``text``
``forget_train``    ``raw/forget``             ``text`` (``scal/forget_k``, ``sust/forget_k``)
``retain_train``    ``raw/retain1``            ``text``
==================  =========================  ======================================

A ``local`` source is a folder with ``<config>/<split>.json`` in that schema; an embedded
world (``mini-muse``) writes the same files. One inference pass gives: greedy
continuations of the VerbMem prefixes (128 new tokens), few-shot greedy answers for
KnowMem (32 new tokens, MUSE's ICL prompt and stop strings), and per-token log-probs with
next-token mean/variance of every PrivLeak text (all text tokens after BOS, as MUSE's
``compute_ppl``). Prompts are raw (no chat template), as in MUSE. ``aggregate`` computes
ROUGE-L F1, the MIA AUCs and, given the retrained model's reference artefact, PrivLeak and
the reference-model attack. Variants: ``-scal-<k>`` (forget set ``scal/forget_k``, k = 1..4
quarters of growing size) and ``-sust-<k>`` (the k-th of 4 sequential unlearning requests,
``sust/forget_k``: unlearn ``-sust-1`` from the target, then ``-sust-2`` from that model, ...).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.metrics import memorization as MEM
from unlearnbench.metrics import mia as MIA
from unlearnbench.metrics import muse as MU
from unlearnbench.protocol import Protocol, rows_by_split
from unlearnbench.registry import PROTOCOLS, TASKS
from unlearnbench.results import canonical_json_hash
from unlearnbench.spec import TaskSpec

_FIELDS = {
    "verbmem": ("prompt", "gt"),
    "knowmem_forget": ("question", "answer"), "knowmem_forget_icl": ("question", "answer"),
    "knowmem_retain": ("question", "answer"), "knowmem_retain_icl": ("question", "answer"),
    "privleak_forget": ("text",), "privleak_holdout": ("text",),
    "forget_train": ("text",), "retain_train": ("text",),
}
ATTACKS = MIA.ATTACKS


# -- data ---------------------------------------------------------------------------------
def load_rows(task: TaskSpec, role: str) -> list[dict]:
    """Rows of ``task.splits[role]`` (``"config/split"``) from the hub, a local folder or a world."""
    from unlearnbench.tasks.llm_data import load_split

    name = task.splits.get(role, "")
    if role in task.splits and "/" not in name:
        raise UserError(f"task {task.name}: split {name!r} must be written 'config/split'")
    return load_split(task, role, _FIELDS.get(role, ()))


def chunk_text(text: str, max_chars: int | None) -> list[str]:
    """Split ``text`` at whitespace into pieces of at most ``max_chars`` characters (None: whole)."""
    if not max_chars or len(text) <= max_chars:
        return [text]
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + max_chars)
        if end < len(text):
            space = text.rfind(" ", start + 1, end)
            end = space if space > start else end
        out.append(text[start:end].strip())
        start = end
    return [c for c in out if c]


@contextlib.contextmanager
def raw_prompts(model):
    """Score/generate with the ``raw`` template (no chat wrapper, no EOS), then restore."""
    from unlearnbench.templates import TEMPLATES

    old = getattr(model, "template", None)
    if old is not None:
        model.template = TEMPLATES["raw"]
    try:
        yield model
    finally:
        if old is not None:
            model.template = old


def truncate_to_tokens(tokenizer, text: str, n: int) -> str:
    """MUSE's VerbMem reference: ``tokenizer(gt, add_special_tokens=True).input_ids[:n]`` decoded
    (``metrics/verbmem.py``: so with a BOS token the reference keeps ``n - 1`` text tokens)."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"][:n]
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


# -- protocol ----------------------------------------------------------------------------
class MuseProtocol(Protocol):
    modality = "llm"

    def _eval_data(self, task: TaskSpec) -> dict[str, list[dict]]:
        from unlearnbench.profiles import limited

        return {role: load_rows(task, role) if role.endswith("_icl") else limited(load_rows(task, role), task)
                for role in ("verbmem", "knowmem_forget", "knowmem_forget_icl", "knowmem_retain", "knowmem_retain_icl",
                             "privleak_forget", "privleak_holdout") if role in task.splits}

    def data_hash(self, task: TaskSpec) -> str:
        return canonical_json_hash(self._eval_data(task))

    def infer(self, task: TaskSpec, model, *, progress: bool = True) -> list[dict]:
        s = task.settings
        data = self._eval_data(task)
        rows: list[dict] = []
        with raw_prompts(model):
            if "verbmem" in data:
                n_new = int(s.get("verbmem_max_new_tokens", 128))
                gens = model.generate([d["prompt"] for d in data["verbmem"]], max_new_tokens=n_new,
                                      progress=progress, desc=f"{task.name}: verbmem")
                # teacher-forced greedy hits on the whole continuation (open-unlearning's MUSE
                # extraction_strength / exact_memorization: prefix + " " + gt, last token dropped)
                stats = model.loglik([d["prompt"] for d in data["verbmem"]], [" " + d["gt"] for d in data["verbmem"]],
                                     token_stats=True, progress=progress, desc=f"{task.name}: verbmem memorisation")
                for i, (d, g, st) in enumerate(zip(data["verbmem"], gens, stats)):
                    rows.append({"split": "verbmem_forget", "index": i, "prompt": d["prompt"], "generation": g,
                                 "reference": truncate_to_tokens(model.tokenizer, d["gt"], n_new),
                                 "hits": [int(h) for h in st["hit"][: max(1, len(st["hit"]) - 1)]]})
            for side in ("forget", "retain"):
                qa = data.get(f"knowmem_{side}")
                if not qa:
                    continue
                icl = [(d["question"], d["answer"]) for d in data.get(f"knowmem_{side}_icl", [])]
                prompts = [MU.knowmem_prompt(d["question"], icl) for d in qa]
                gens = model.generate(prompts, max_new_tokens=int(s.get("knowmem_max_new_tokens", 32)),
                                      progress=progress, desc=f"{task.name}: knowmem {side}")
                for i, (d, g) in enumerate(zip(qa, gens)):
                    rows.append({"split": f"knowmem_{side}", "index": i, "question": d["question"],
                                 "generation": MU.strip_knowmem_answer(g), "reference": d["answer"]})
            rows += self._privleak_rows(task, model, data, progress)
        return rows

    @staticmethod
    def _privleak_rows(task, model, data, progress) -> list[dict]:
        k = float(task.settings.get("mia_k", MIA.DEFAULT_K))
        items = [(side, i, d["text"]) for side in ("forget", "holdout")
                 for i, d in enumerate(data.get(f"privleak_{side}", []))]
        if not items:
            return []
        stats = model.loglik([""] * len(items), [t for _, _, t in items], token_stats=True, progress=progress,
                             desc=f"{task.name}: privleak")
        out = []
        for (side, i, text), st in zip(items, stats):
            row = {"split": f"privleak_{side}", "index": i, "n_tokens": int(len(st["logprobs"]))}
            row.update(MIA.all_scores(st["logprobs"], st["mu"], st["var"], text, k))
            out.append(row)
        return out

    # -- aggregation (pure) --------------------------------------------------------------
    _by_split = staticmethod(rows_by_split)

    @classmethod
    def mia_aucs(cls, rows: list[dict]) -> dict[str, float]:
        by = cls._by_split(rows)
        f, h = by.get("privleak_forget"), by.get("privleak_holdout")
        if not f or not h:
            return {}
        return {a: MIA.mia_auc([r[a] for r in f], [r[a] for r in h]) for a in ATTACKS if a in f[0]}

    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        stem = bool(task.settings.get("use_stemmer", False))
        by = self._by_split(rows)
        out: dict[str, dict] = {}
        # MUSE's C1-C3 (VerbMem on D_f, KnowMem on D_f, KnowMem on D_r) as split/metric keys
        for split, name, hib in (("verbmem_forget", "forget/verbmem", False), ("knowmem_forget", "forget/knowmem", False),
                                 ("knowmem_retain", "retain/knowmem", True)):
            rs = by.get(split)
            if rs:
                vals = MU.rouge_l_f1([r["generation"] for r in rs], [r["reference"] for r in rs], use_stemmer=stem)
                mean, se = mean_stderr(vals)
                out[name] = metric_value(mean, hib, len(rs), se)
        vm = by.get("verbmem_forget") or []
        if vm and all("hits" in r for r in vm):
            for name, fn in (("extraction_strength", MEM.extraction_strength), ("exact_memorization", MEM.exact_memorization)):
                mean, se = mean_stderr(fn([r["hits"] for r in vm]))
                out[name] = metric_value(mean, False, len(vm), se)
        aucs = self.mia_aucs(rows)
        n_mia = len(by.get("privleak_forget", [])) + len(by.get("privleak_holdout", []))
        for a, v in aucs.items():
            out[a] = metric_value(v, False, n_mia)
        if reference is not None and aucs:
            attack = task.settings.get("privleak_attack", "mia_min_k")
            ref_auc = (reference.get("auc") or {}).get(attack)
            if ref_auc is None:
                raise UserError(f"the reference artefact holds no {attack} AUC; rebuild it for {task.name}")
            extra = {"attack": attack, "auc": aucs[attack], "auc_retrain": ref_auc}
            out["privleak"] = metric_value(MU.privleak(aucs[attack], ref_auc), False, n_mia, None, **extra)
            out["privleak_gap"] = metric_value(MU.privleak_gap(aucs[attack], ref_auc), False, n_mia, None, **extra)
            out["mia_reference"] = metric_value(self._reference_auc(by, reference), False, n_mia)
        return out

    @classmethod
    def _reference_auc(cls, by: dict, reference: dict) -> float:
        ref = cls._by_split(reference.get("rows") or [])
        loss = {}
        for side in ("forget", "holdout"):
            mine, theirs = by[f"privleak_{side}"], ref.get(f"privleak_{side}", [])
            if [r["index"] for r in mine] != [r["index"] for r in theirs]:
                raise UserError(f"the reference artefact's privleak_{side} samples differ from this task's")
            loss[side] = ([r["mia_loss"] for r in mine], [r["mia_loss"] for r in theirs])
        return MIA.mia_reference(loss["forget"][0], loss["holdout"][0], loss["forget"][1], loss["holdout"][1])

    def reference_payload(self, task: TaskSpec, rows: list[dict]) -> dict:
        """The retrained model's forget-vs-holdout AUCs and its per-sample MIA scores."""
        by = self._by_split(rows)
        keep = by.get("privleak_forget", []) + by.get("privleak_holdout", [])
        return {"auc": self.mia_aucs(rows), "privleak_attack": task.settings.get("privleak_attack", "mia_min_k"),
                "rows": keep}

    # -- training data ---------------------------------------------------------------------
    def training_data(self, task: TaskSpec) -> dict:
        n = task.settings.get("train_chunk_chars")
        as_qa = lambda rows: [{"question": "", "answer": c} for r in rows for c in chunk_text(r["text"], n)]  # noqa: E731
        forget = load_rows(task, "forget_train")
        retain = load_rows(task, "retain_train") if "retain_train" in task.splits else []
        return {"forget": as_qa(forget), "retain": as_qa(retain),
                "forget_id": {"split": task.splits["forget_train"], "sha256": canonical_json_hash([r["text"] for r in forget])}}


PROTOCOLS.register("muse", MuseProtocol, modality="llm",
                   description="MUSE: VerbMem, KnowMem (forget/retain), MIA AUCs, PrivLeak vs the retrained model")

MUSE_METRICS = ("forget/verbmem", "forget/knowmem", "retain/knowmem", "privleak", "privleak_gap",
                "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference",
                "extraction_strength", "exact_memorization")  # the last two: open-unlearning's MUSE set
MUSE_SETTINGS = {
    "verbmem_max_new_tokens": 128,  # MUSE eval.py verbmem_max_new_tokens
    "knowmem_max_new_tokens": 32,   # MUSE eval.py knowmem_max_new_tokens
    "use_stemmer": False,           # MUSE metrics/logger.py (open-unlearning: True)
    "mia_k": 0.4,                   # MUSE privleak key forget_holdout_Min-40%
    "privleak_attack": "mia_min_k",
    "train_chunk_chars": 8000,      # ~2k Llama tokens; MUSE trains on 2048-token chunks
}
MUSE_SPLITS = {
    "verbmem": "verbmem/forget",
    "knowmem_forget": "knowmem/forget_qa", "knowmem_forget_icl": "knowmem/forget_qa_icl",
    "knowmem_retain": "knowmem/retain_qa", "knowmem_retain_icl": "knowmem/retain_qa_icl",
    "privleak_forget": "privleak/forget", "privleak_holdout": "privleak/holdout",
    "forget_train": "raw/forget", "retain_train": "raw/retain1",
}


def variants(base: TaskSpec, n: int = 4) -> list[TaskSpec]:
    """``-scal-<k>`` and ``-sust-<k>`` variants of a MUSE task (forget split ``scal|sust/forget_k``)."""
    out = []
    for kind, what in (("scal", "scalability: forget set of {k}/4 of the largest"),
                       ("sust", "sustainability: unlearning request {k} of 4, applied after the previous ones")):
        for k in range(1, n + 1):
            out.append(base.replace(name=f"{base.name}-{kind}-{k}",
                                    splits={**base.splits, "forget_train": f"{kind}/forget_{k}"},
                                    settings={**base.settings, "setting": kind, "request": k},
                                    description=f"{base.description.split(':')[0]}: MUSE {what.format(k=k)}"))
    return out


MUSE_NEWS = TaskSpec(
    name="muse/news", modality="llm", protocol="muse", version=1,
    source={"kind": "hub", "path": "muse-bench/MUSE-News"}, splits=MUSE_SPLITS, settings=MUSE_SETTINGS,
    metrics=MUSE_METRICS, references=("retrain",), rank_by="privleak_gap",
    description="MUSE-News: unlearn BBC news articles; VerbMem, KnowMem, PrivLeak vs the retrained model")
MUSE_BOOKS = MUSE_NEWS.replace(
    name="muse/books", source={"kind": "hub", "path": "muse-bench/MUSE-Books"},
    description="MUSE-Books: unlearn the Harry Potter books; VerbMem, KnowMem, PrivLeak vs the retrained model")

for _t in (MUSE_NEWS, MUSE_BOOKS, *variants(MUSE_NEWS)):
    TASKS.register(_t.name, _t, modality="llm", version=_t.version, description=_t.description)
