"""MUSE metrics (Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models").

* **VerbMem** on the forget set: ROUGE-L F1 between the model's greedy continuation of a
  forget-text prefix and the true continuation (``verbmem_f``).
* **KnowMem** on the forget / retain sets: ROUGE-L F1 between the model's answer to a
  question about the corpus and the reference answer (``knowmem_f``, ``knowmem_r``).
* **PrivLeak**: relative change of a membership-inference AUC (forget vs holdout) against
  the retrained model's AUC (``privleak``).

ROUGE settings (recorded in every result through the task's ``settings``):

=================  ==========================================  ==================================
                   MUSE (``swj0419/muse_bench``)               open-unlearning (``locuslab``)
=================  ==========================================  ==================================
scorer             ``rouge_score.RougeScorer``                 ``rouge_score.RougeScorer``
                   (``metrics/logger.py``, ``RougeEvalLogger``)  (``src/evals/metrics/utils.py``,
                                                               ``eval_text_similarity``)
value              ``rougeL`` ``fmeasure``                     ``rougeL_f1`` = ``rougeL`` fmeasure
stemming           ``use_stemmer=False``                       ``use_stemmer=True``
tokenisation       rouge_score default: lower-case, non        same
                   ``[a-z0-9]`` -> space, whitespace split
VerbMem reference  ``gt`` truncated to its first 128 model     ``gt`` as given
                   tokens, then decoded
KnowMem answer     cut at ``"\\n\\n"``, ``"\\nQuestion"``,        cut at the configured stop words
                   ``"Question:"``; few-shot prompt            and EOS
                   ``"Question: {q}\\nAnswer: {a}\\n\\n"`` x ICL
=================  ==========================================  ==================================

This suite follows MUSE (``use_stemmer=False``) by default; ``use_stemmer`` is a setting of
the task, so open-unlearning's variant is one ``dataclasses.replace`` away. Values are in
[0, 1]; MUSE's tables print them x 100.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import register_metric

#: MUSE's stop strings for KnowMem answers (``metrics/knowmem.py``, ``get_prefix_before_words_occur``)
KNOWMEM_STOP = ("\n\n", "\nQuestion", "Question:")


def _scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l_f1(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False) -> np.ndarray:
    """Per-sample ROUGE-L F1 (``rouge_score``; ``scorer.score(reference, prediction)``).

    >>> rouge_l_f1(["the cat sat"], ["the cat sat down"]).round(3).tolist()
    [0.857]
    """
    if isinstance(predictions, str) or isinstance(references, str):
        raise UserError("rouge_l_f1 takes lists of strings, not a single string")
    if len(predictions) != len(references):
        raise UserError(f"rouge_l_f1: {len(predictions)} predictions for {len(references)} references")
    scorer = _scorer(use_stemmer)
    return np.array([scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)],
                    dtype=np.float64)


def knowmem_prompt(question: str, icl: Sequence[tuple[str, str]] = ()) -> str:
    """MUSE's few-shot KnowMem prompt: ICL pairs then ``"Question: {q}\\nAnswer: "``."""
    head = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in icl)
    return head + f"Question: {question}\nAnswer: "


def strip_knowmem_answer(output: str, stop: Sequence[str] = KNOWMEM_STOP) -> str:
    """The generated answer up to the first stop string (MUSE's post-processing)."""
    for word in stop:
        output = output.split(word)[0]
    return output


def _mean_rouge(predictions, references, use_stemmer):
    vals = rouge_l_f1(predictions, references, use_stemmer=use_stemmer)
    if vals.size == 0:
        raise UserError("ROUGE-L needs at least one sample")
    return float(vals.mean())


@register_metric("verbmem", higher_is_better=False, modalities=("llm",), consumes=("rouge_l_f1",),
                 description="MUSE VerbMem: mean ROUGE-L F1 of continuations of forget-text prefixes "
                             "(result key forget/verbmem)")
def verbmem_f(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False) -> float:
    """MUSE VerbMem on the forget set: mean ROUGE-L F1 (continuation vs true continuation).

    Inputs: the model's greedy continuations (MUSE: 128 new tokens) and the true
    continuations (MUSE: truncated to 128 model tokens). Output in [0, 1]; lower = less
    verbatim memorisation (a retrained model's value is the target, not 0).
    Values from the paper (x100, Llama-2-7B on News): target 58.4, retrained 20.8.
    Citation: Shi et al., 2024, arXiv:2407.06460, Sec. 3.
    """
    return _mean_rouge(predictions, references, use_stemmer)


def knowmem_f(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False) -> float:
    """MUSE KnowMem on forget-set QA: mean ROUGE-L F1 of the answers (lower = forgotten).

    Values from the paper (x100, News): target 63.9, retrained 33.7. Shi et al., 2024, Sec. 3.
    """
    return _mean_rouge(predictions, references, use_stemmer)


@register_metric("knowmem", higher_is_better=True, modalities=("llm",), consumes=("rouge_l_f1",),
                 description="MUSE KnowMem: mean ROUGE-L F1 of QA answers (result keys forget/knowmem, lower "
                             "better; retain/knowmem, higher better)")
def knowmem_r(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False) -> float:
    """MUSE KnowMem on retain-set QA (utility preservation): mean ROUGE-L F1, higher is better.

    Values from the paper (x100, News): target 55.2, retrained 55.0. Shi et al., 2024, Sec. 3.
    """
    return _mean_rouge(predictions, references, use_stemmer)


def _auc(x: float, what: str) -> float:
    v = float(x)
    if not (0.0 <= v <= 1.0):
        raise UserError(f"privleak: {what} AUC must lie in [0, 1], got {v}")
    return v


@register_metric("privleak", higher_is_better=False, modalities=("llm",), consumes=("mia_min_k",),
                 description="MUSE PrivLeak: relative change of the forget-vs-holdout MIA AUC against the retrained model (ideal 0)")
def privleak(auc: float, auc_retrain: float) -> float:
    """MUSE PrivLeak = ``(AUC_unlearn - AUC_retrain) / AUC_retrain * 100`` on MUSE's AUC scale.

    Inputs are AUCs in this suite's (open-unlearning's) convention (:func:`mia_auc`: holdout
    positive, loss-like scores; 1 = forget texts far more likely). MUSE's own AUC is the
    mirror image, ``AUC_MUSE = 1 - AUC`` (``metrics/privleak.py`` scores ``-ppl`` with forget
    labelled 0), which is also exactly what open-unlearning does before the same formula
    (``src/evals/metrics/privacy.py``, ``privleak``: ``score = 1 - score; ref = 1 - ref``,
    ``(score - ref) / (ref + 1e-10) * 100``). So::

        privleak = ((1 - auc) - (1 - auc_retrain)) / (1 - auc_retrain) * 100

    Output: a percentage. 0 = the unlearned model leaks as much as a retrained one;
    strongly negative = under-unlearning (the forget set is still recognisably a member;
    the target model is near -100); strongly positive = over-unlearning (forget texts
    became *less* likely than unseen text). ``|privleak|`` is :func:`privleak_gap`.
    MUSE uses the Min-K% (k=0.4) attack (``eval.py``: ``privleak_auc_key='forget_holdout_Min-40%'``).
    Values from the paper (News, Llama-2-7B): target -99.8, retrained 0 by definition.
    Citation: Shi et al., 2024, arXiv:2407.06460, Sec. 3 (criterion C4).
    """
    a, r = _auc(auc, "unlearned"), _auc(auc_retrain, "retrained")
    if r >= 1.0:
        raise UserError("privleak is undefined when the retrained model's AUC is 1 (MUSE AUC 0)")
    return ((1.0 - a) - (1.0 - r)) / (1.0 - r) * 100.0


@register_metric("privleak_gap", higher_is_better=False, modalities=("llm",), consumes=("mia_min_k",),
                 description="|PrivLeak|: distance from the retrained model's leakage (0 is ideal)")
def privleak_gap(auc: float, auc_retrain: float) -> float:
    """``|privleak(auc, auc_retrain)|``: the leaderboard's ranking form of PrivLeak (lower is better)."""
    return abs(privleak(auc, auc_retrain))
