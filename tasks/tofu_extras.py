"""TOFU metrics beyond TOFU's own: open-unlearning's default and optional TOFU metric set.

All computed from per-sample rows (pure; ``leaderboard verify`` re-derives them). Result keys
use open-unlearning's metric names where it has them; ``ou_name`` in each stored value gives
its config name (``configs/eval/tofu_metrics/*.yaml`` at d3d7cf9):

==============================================  =====================================================
result key                                      open-unlearning
==============================================  =====================================================
``mia_min_k``, ``mia_loss``, ``mia_zlib``,      ``mia_min_k`` (k = 0.4), ``mia_loss``, ``mia_zlib``,
``mia_min_k_plus_plus``                         ``mia_min_k_plus_plus``: AUC, forget vs holdout gold
                                                answers (:mod:`unlearnbench.metrics.mia`)
``privleak``                                    ``privleak`` on ``mia_min_k`` against the retain
                                                model's AUC (reference artefact) or, under the
                                                open-unlearning profile without one, AUC 0.5
``extraction_strength``, ``exact_memorization``  same names, forget gold answers
                                                (:mod:`unlearnbench.metrics.memorization`)
``<split>/truth_ratio_prob_mean``               ``truth_ratio`` with ``aggregator: prob_mean`` (#163)
``<split>/rouge1_recall``                       ``rouge1_recall`` of ``<split>_Q_A_ROUGE``
``forget/rouge_l_recall_paraphrased`` (and      ``forget_Q_A_PARA_ROUGE``, ``forget_Q_A_PERT_ROUGE``:
``_perturbed``; also on retain)                 the greedy answer against the paraphrased /
                                                each perturbed answer (their mean per question)
==============================================  =====================================================

open-unlearning generates again for the paraphrased and for each perturbed answer; the prompt
is the same question, so the greedy answer is the same and is reused here.
"""

from __future__ import annotations

import numpy as np

from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.metrics import memorization as MEM
from unlearnbench.metrics import mia as MIA
from unlearnbench.metrics import muse as MU
from unlearnbench.metrics import tofu as M
from unlearnbench.spec import TaskSpec

#: attacks whose per-sample scores rows may carry (gradnorm and reference only from ingested logs)
ATTACKS = MIA.ATTACKS + ("mia_gradnorm", "mia_reference")
_OU_SPLIT = {"forget": "forget", "retain": "retain", "real_authors": "ra", "world_facts": "wf"}


def mia_aucs(by: dict) -> dict[str, float]:
    """Forget-vs-holdout AUC of every attack whose per-sample score the rows carry."""
    f, h = by.get("forget") or [], by.get("holdout") or []
    if not f or not h:
        return {}
    return {a: MIA.mia_auc([r[a] for r in f], [r[a] for r in h])
            for a in ATTACKS if all(a in r for r in f) and all(a in r for r in h)}


def _mean(vals, hib: bool, ou_name: str | None = None) -> dict:
    mean, se = mean_stderr(vals)
    return metric_value(mean, hib, len(vals), se, **({"ou_name": ou_name} if ou_name else {}))


def _stored(rs: list[dict], key: str) -> np.ndarray | None:
    """Per-sample values every row carries (ingested logs), else None."""
    return np.array([r[key] for r in rs], dtype=np.float64) if rs and all(key in r for r in rs) else None


def _rouge_against(rs: list[dict], key: str, fn) -> np.ndarray:
    """Per question: the metric of the generation against ``key`` (a string or a list: their mean)."""
    vals = []
    for r in rs:
        refs = r.get(f"reference_{key}", r.get(f"{key}_answer"))
        refs = [refs] if isinstance(refs, str) else list(refs)
        vals.append(float(np.mean(fn([r["generation"]] * len(refs), refs))))
    return np.array(vals)


def extra_metrics(task: TaskSpec, by: dict, reference: dict | None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for role, rs in by.items():
        if role not in _OU_SPLIT:
            continue
        ou = _OU_SPLIT[role]
        knowledge_good = role != "forget"
        if all("generation" in r for r in rs):
            refs = [r.get("reference", r.get("answer", "")) for r in rs]
            r1 = _stored(rs, "rouge1_recall")
            r1 = M.rouge1_recall([r["generation"] for r in rs], refs) if r1 is None else r1
            out[f"{role}/rouge1_recall"] = _mean(r1, knowledge_good, f"{ou}_Q_A_ROUGE.rouge1_recall")
        for kind, ou_kind in (("paraphrased", "PARA"), ("perturbed", "PERT")):
            vals = _stored(rs, f"rouge_l_recall_{kind}")  # ingested logs carry the other tool's ROUGE
            if vals is None and all("generation" in r and (f"{kind}_answer" in r or f"reference_{kind}" in r)
                                    for r in rs):
                vals = _rouge_against(rs, kind, M.rouge_l_recall)
            if vals is not None:
                out[f"{role}/rouge_l_recall_{kind}"] = _mean(vals, knowledge_good, f"{ou}_Q_A_{ou_kind}_ROUGE")
        if all("nll_paraphrased" in r and "nll_perturbed" in r for r in rs):
            pm = M.truth_ratio_prob_mean([r["nll_paraphrased"] for r in rs], [r["nll_perturbed"] for r in rs])
            out[f"{role}/truth_ratio_prob_mean"] = _mean(pm, knowledge_good, "truth_ratio(aggregator=prob_mean)")
    forget = by.get("forget") or []
    for name, fn in (("extraction_strength", MEM.extraction_strength), ("exact_memorization", MEM.exact_memorization)):
        vals = _stored(forget, name)  # ingested per-sample values, else from the greedy-hit flags
        if vals is None and forget and all("hits" in r for r in forget):
            vals = fn([r["hits"] for r in forget])
        if vals is not None:
            out[name] = _mean(vals, False, name)
    aucs = mia_aucs(by)
    n_mia = len(forget) + len(by.get("holdout") or [])
    for a, v in aucs.items():
        out[a] = metric_value(v, False, n_mia, None, ou_name=a)
    if "mia_min_k" in aucs:
        ref_auc, source = _privleak_reference(task, reference)
        if ref_auc is not None:
            out["privleak"] = metric_value(MU.privleak(aucs["mia_min_k"], ref_auc), False, n_mia, None,
                                           attack="mia_min_k", auc=aucs["mia_min_k"], auc_retain=ref_auc,
                                           reference=source, ou_name="privleak")
    return out


def _privleak_reference(task: TaskSpec, reference: dict | None) -> tuple[float | None, str | None]:
    """The retain model's Min-K% AUC from the reference artefact; else the profile's default."""
    if reference is not None:
        auc = (reference.get("mia_auc") or {}).get("mia_min_k")
        # a reference built before MIA AUCs were kept: privleak is left out, never guessed
        return (float(auc), "retain model") if auc is not None else (None, None)
    default = task.settings.get("privleak_reference_auc")
    return (float(default), f"default AUC {default} (no retain reference; open-unlearning's ref_value)") \
        if default is not None else (None, None)
