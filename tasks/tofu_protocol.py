"""The TOFU protocol: one pass of log-likelihoods and greedy generations, then TOFU's metrics.

For every question of the forget, retain, real-authors and world-facts sets the model
scores the gold answer, the paraphrased answer and each perturbed answer (mean per-token
NLL over answer tokens, prompt masked, TOFU-style), and greedily answers the question once.
All splits go through one length-bucketed log-likelihood call and one generation call.
``aggregate`` then computes, per split, ROUGE-L recall, (normalised) probability and the
truth-ratio statistic, the forget quality against the retain model's truth ratios (a
reference artefact) and the model utility (harmonic mean of the nine retain-side numbers).
Definitions: Maini et al. 2024 (TOFU) and locuslab/tofu's ``aggregate_eval_stat.py``.

The same pass also scores the ``holdout`` split's gold answers and keeps, for the forget and
holdout gold answers, the next-token statistics behind open-unlearning's TOFU metrics
(membership-inference scores, greedy-hit flags): ``tasks/tofu_extras.py`` aggregates them.
How prompts are built and which tokens are scored follow the task's scoring profile
(``unlearnbench.profiles``), applied to the model by ``model.use_settings``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.metrics import mia as MIA
from unlearnbench.metrics import tofu as M
from unlearnbench.profiles import limited
from unlearnbench.protocol import Protocol, rows_by_split
from unlearnbench.registry import PROTOCOLS
from unlearnbench.spec import TaskSpec
from unlearnbench.tasks.llm_data import data_hash, load_split
from unlearnbench.tasks.tofu_extras import extra_metrics, mia_aucs

EVAL_ROLES = ("forget", "retain", "real_authors", "world_facts")
_SCHEMA = {
    "forget": ("question", "answer", "paraphrased_answer", "perturbed_answer"),
    "retain": ("question", "answer", "paraphrased_answer", "perturbed_answer"),
    "real_authors": ("question", "answer", "perturbed_answer"),
    "world_facts": ("question", "answer", "perturbed_answer"),
    "holdout": ("question", "answer"),
}
MIA_ROLES = ("forget", "holdout")  # membership inference: forget (members) vs holdout (never seen)
_IDK_FILE = Path(__file__).with_name("idk_answers.txt")


def _as_list(x) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [str(v) for v in x]


def _store(row: dict, field: str, j, lp, k: float, model, prompt: str, answer: str, task: TaskSpec) -> None:
    """Write one scored answer into its row: mean NLL and token count; for MIA roles the
    attack scores and the greedy-hit flags (the appended EOS left out, as open-unlearning)."""
    tok = lp["logprobs"] if isinstance(lp, dict) else lp
    nll, n = float(-np.mean(tok)), int(len(tok))
    if field == "perturbed":
        row.setdefault("nll_perturbed", [None] * row["_k"])[j] = nll
        row.setdefault("n_tokens_perturbed", [None] * row["_k"])[j] = n
    else:
        row[f"nll_{field}"], row[f"n_tokens_{field}"] = nll, n
    if row["split"] != "holdout":  # ROUGE references: the answer, or as the profile's tool decodes it
        ref = model.reference_text(prompt, answer) if task.settings.get("rouge_reference") == "decoded" else answer
        key = "reference" if field == "answer" else f"reference_{field}"
        if field == "perturbed":
            row.setdefault(key, [None] * row["_k"])[j] = ref
        else:
            row[key] = ref
    if isinstance(lp, dict):
        body = slice(0, max(1, n - 1))  # drop the last scored token (the appended EOS)
        row["mia_loss"] = nll
        row["mia_zlib"] = nll / MIA.zlib_entropy(model.scored_text(prompt, answer) or answer)
        row["mia_min_k"] = MIA.min_k_score(tok[body], k)
        row["mia_min_k_plus_plus"] = MIA.min_k_plus_plus_score(tok[body], lp["mu"][body], lp["var"][body], k)
        row["hits"] = [int(h) for h in lp["hit"][body]]


def generation_args(task: TaskSpec, model, prompts: list[str]) -> dict:
    """``max_new_tokens`` from the settings; with ``max_length`` (locuslab/tofu) the rest of a
    ``max_length``-token budget after each prompt."""
    if task.settings.get("max_length"):
        budget = int(task.settings["max_length"])
        return {"max_new_tokens": [max(1, budget - n) for n in model.prompt_lengths(prompts)]}
    return {"max_new_tokens": int(task.settings.get("max_new_tokens", 128)), "stop": tuple(task.settings.get("stop", ()))}


class TofuProtocol(Protocol):
    modality = "llm"

    def _splits(self, task: TaskSpec) -> dict[str, list[dict]]:
        return {role: limited(load_split(task, role, _SCHEMA[role]), task)
                for role in EVAL_ROLES + ("holdout",) if role in task.splits}

    def data_hash(self, task: TaskSpec) -> str:
        return data_hash(self._splits(task))

    # -- inference ----------------------------------------------------------------------
    def infer(self, task: TaskSpec, model, *, progress: bool = True) -> list[dict]:
        """One pass: every answer's token log-probs (with next-token statistics for the forget
        and holdout gold answers: MIA, memorisation) and one greedy answer per question."""
        model.use_settings(task.settings)
        splits = self._splits(task)
        if "forget" not in splits:
            raise UserError(f"task {task.name} has no forget split")
        rows, plain, stats = [], [], []  # plain/stats: (row number, field, position, prompt, answer)
        for role, data in splits.items():
            for i, ex in enumerate(data):
                r = len(rows)
                prompt = model.render(ex["question"])
                rows.append({"split": role, "index": i, "question": ex["question"], "answer": ex["answer"],
                             "_prompt": prompt})
                (stats if role in MIA_ROLES else plain).append((r, "answer", None, prompt, ex["answer"]))
                if role == "holdout":
                    continue
                if "paraphrased_answer" in ex:
                    plain.append((r, "paraphrased", None, prompt, ex["paraphrased_answer"]))
                perturbed = _as_list(ex["perturbed_answer"])
                rows[-1]["_k"] = len(perturbed)
                plain += [(r, "perturbed", j, prompt, a) for j, a in enumerate(perturbed)]
        k = float(task.settings.get("mia_k", MIA.DEFAULT_K))
        for items, with_stats in ((plain, False), (stats, True)):
            if not items:
                continue
            out = model.loglik([it[3] for it in items], [it[4] for it in items], token_stats=with_stats,
                               progress=progress, desc=f"{task.name}: log-likelihoods")
            for (r, field, j, prompt, answer), lp in zip(items, out):
                _store(rows[r], field, j, lp, k, model, prompt, answer, task)
        gen_rows = [r for r in rows if r["split"] != "holdout"]
        gens = model.generate([r["_prompt"] for r in gen_rows], progress=progress, desc=f"{task.name}: generating",
                              **generation_args(task, model, [r["_prompt"] for r in gen_rows]))
        for row, g in zip(gen_rows, gens):
            row["generation"] = g
        for row in rows:
            row["prompt"] = row.pop("_prompt")
            row.pop("_k", None)
            if "nll_paraphrased" not in row and row["split"] != "holdout":  # real authors / world facts
                row["nll_paraphrased"] = row["nll_answer"]
        return rows

    # -- aggregation (pure) ------------------------------------------------------------
    _by_split = staticmethod(rows_by_split)

    @staticmethod
    def truth_ratios(rows: list[dict]) -> np.ndarray:
        return M.truth_ratio([r["nll_paraphrased"] for r in rows], [r["nll_perturbed"] for r in rows])

    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        out: dict[str, dict] = {}
        by = self._by_split(rows)
        for role, rs in by.items():
            if role not in EVAL_ROLES:
                continue
            n = len(rs)
            nll = [r["nll_answer"] for r in rs]
            if role in ("forget", "retain", "holdout"):
                prob = M.probability(nll)
            else:
                prob = M.normalized_probability(nll, [r["nll_perturbed"] for r in rs])
            if all("rouge_l_recall" in r for r in rs):  # ingested logs carry the other tool's ROUGE
                rouge = [r["rouge_l_recall"] for r in rs]
            else:
                rouge = M.rouge_l_recall([r["generation"] for r in rs], [r.get("reference", r["answer"]) for r in rs])
            tr = self.truth_ratios(rs)
            tr_stat = M.truth_ratio_forget_stat(tr) if role == "forget" else M.truth_ratio_retain_stat(tr)
            # On the forget set, recalling the answer is what unlearning should undo: lower is
            # better for probability and ROUGE; the truth-ratio statistic is higher-better everywhere.
            knowledge_good = role != "forget"
            for name, vals, better in (("probability", prob, knowledge_good), ("rouge_l_recall", rouge, knowledge_good),
                                       ("truth_ratio", tr_stat, True)):
                mean, se = mean_stderr(vals)
                out[f"{role}/{name}"] = metric_value(mean, better, n, se)
        if all(k in out for k in M.UTILITY_KEYS):
            out["model_utility"] = metric_value(M.model_utility([out[k]["value"] for k in M.UTILITY_KEYS]), True,
                                                sum(out[k]["n"] for k in M.UTILITY_KEYS) // 3,
                                                components=list(M.UTILITY_KEYS))
        if reference is not None and "forget" in by:
            ref_tr = np.asarray(reference["forget_truth_ratio"], dtype=np.float64)
            tr = self.truth_ratios(by["forget"])
            if len(ref_tr) != len(tr):
                raise UserError(f"reference has {len(ref_tr)} forget truth ratios, the task has {len(tr)} questions")
            p, stat = M.forget_quality(tr, ref_tr)
            out["forget_quality"] = metric_value(p, True, len(tr), None, ks_statistic=stat)
        out.update(extra_metrics(task, by, reference))
        return out

    def reference_payload(self, task: TaskSpec, rows: list[dict]) -> dict:
        by = self._by_split(rows)
        forget = by["forget"]
        payload = {"forget_truth_ratio": self.truth_ratios(forget).tolist(),
                   "forget_questions": [r.get("question") for r in forget]}
        aucs = mia_aucs(by)
        if aucs:  # the retain model's forget-vs-holdout AUCs: PrivLeak's reference
            payload["mia_auc"] = aucs
        return payload

    # -- training data -------------------------------------------------------------------
    def training_data(self, task: TaskSpec) -> dict:
        forget = load_split(task, "forget_train", ("question", "answer"))
        retain = load_split(task, "retain_train", ("question", "answer")) if "retain_train" in task.splits else []
        idk_file = Path(task.settings.get("idk_file") or _IDK_FILE)
        idk = [line.strip() for line in idk_file.read_text().splitlines() if line.strip()]
        qa = lambda rows: [{"question": r["question"], "answer": r["answer"]} for r in rows]  # noqa: E731
        return {"forget": qa(forget), "retain": qa(retain), "idk": idk,
                "forget_id": [r["question"] for r in forget]}


PROTOCOLS.register("tofu", TofuProtocol, modality="llm", description="TOFU: probability, ROUGE-L, truth ratio, forget quality, model utility")
