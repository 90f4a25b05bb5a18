"""TOFU metrics (Maini et al., 2024, "TOFU: A Task of Fictitious Unlearning for LLMs").

Pure functions over per-sample arrays. The definitions follow the paper (Sec. 2.5) and the
formulas of locuslab/tofu's ``aggregate_eval_stat.py``; parity with that repository's
published logs is tested in ``tests/test_tofu_parity.py`` (values within 1e-9 relative).

Inputs are *length-normalised* negative log-likelihoods: the mean per-token NLL of an answer
given its question (TOFU's ``avg_gt_loss``, ``avg_paraphrased_loss``,
``average_perturb_loss``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unlearnbench.metric import register_metric


def _arr(x, name: str, ndim: int = 1) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite values")
    return a


@register_metric("probability", higher_is_better=True, modalities=("llm",), consumes=("nll_answer",))
def probability(nll_answer: Sequence[float]) -> np.ndarray:
    """Answer probability: ``P(a|q)^(1/|a|) = exp(-mean per-token NLL)``, per sample.

    **Inputs**: ``nll_answer`` (n,) mean per-token NLL of the gold answer.
    **Output**: (n,) probabilities in (0, 1]; the headline number is their mean.
    **Values from the original paper**: a Phi-1.5 fine-tuned on all of TOFU scores 0.928 on
    forget10 and 0.926 on retain (TOFU's published logs; see ``tests/test_tofu_parity.py``).
    **Limitations**: length-normalised, so it is not the sequence probability.
    **Citation**: Maini et al. 2024, TOFU, Sec. 2.5.1.

    >>> probability([0.0, np.log(2)]).round(3).tolist()
    [1.0, 0.5]
    """
    return np.exp(-_arr(nll_answer, "nll_answer"))


def normalized_probability(nll_answer: Sequence[float], nll_perturbed: Sequence[Sequence[float]]) -> np.ndarray:
    """Probability of the true answer among the true and perturbed ones, per sample.

    ``p_true / (p_true + sum_j p_perturbed_j)`` with ``p = exp(-mean per-token NLL)``. TOFU
    uses it for the real-authors and world-facts sets (``Prob. Real Authors/World``).

    >>> normalized_probability([0.0], [[0.0, 0.0, 0.0]]).tolist()
    [0.25]
    """
    p_true = np.exp(-_arr(nll_answer, "nll_answer"))
    p_pert = np.exp(-_arr(nll_perturbed, "nll_perturbed", 2))
    if p_pert.shape[0] != p_true.shape[0]:
        raise ValueError("nll_answer and nll_perturbed differ in length")
    return p_true / (p_true + p_pert.sum(axis=1))


@register_metric("rouge_l_recall", higher_is_better=True, modalities=("llm",), consumes=("generation", "answer"))
def rouge_l_recall(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall of each generated answer against the gold answer, per sample.

    Computed with Google's ``rouge_score`` (``RougeScorer(["rougeL"], use_stemmer=True)``,
    ``score(target=reference, prediction=generation).recall``), as TOFU does: the length of
    the longest common subsequence of tokens over the reference's length. Text after the
    answer does not lower recall.

    **Values from the original paper**: 0.925 on forget10 for the fully fine-tuned Phi-1.5.
    **Limitations**: lexical; rewards copying, blind to paraphrase.
    """
    return _rouge_recall("rougeL", predictions, references)


def _rouge_recall(kind: str, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """``rouge_score`` recall of ``kind`` (stemmer on), per (prediction, reference) pair."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
    return np.array([scorer.score(r, p)[kind].recall for p, r in zip(predictions, references)], dtype=np.float64)


@register_metric("truth_ratio", higher_is_better=True, modalities=("llm",),
                 consumes=("nll_paraphrased", "nll_perturbed"))
def truth_ratio(nll_paraphrased: Sequence[float], nll_perturbed: Sequence[Sequence[float]]) -> np.ndarray:
    """Truth ratio per sample: geometric mean of the perturbed answers' length-normalised
    probabilities over the paraphrased answer's.

    ``TR = (prod_j P(a_pert_j|q)^(1/|a_pert_j|))^(1/k) / P(a_para|q)^(1/|a_para|)``
    ``   = exp(nll_paraphrased - mean_j nll_perturbed_j)``.

    TR near 1: the model cannot tell the paraphrased true answer from wrong ones (what a
    model that never saw the facts does); TR near 0: it prefers the truth. Summaries:
    :func:`truth_ratio_forget_stat` (``mean(min(TR, 1/TR))``) and
    :func:`truth_ratio_retain_stat` (``mean(max(0, 1 - TR))``), higher better for both.

    >>> truth_ratio([1.0], [[2.0, 2.0]]).round(4).tolist()
    [0.3679]
    """
    para = _arr(nll_paraphrased, "nll_paraphrased")
    pert = _arr(nll_perturbed, "nll_perturbed", 2)
    if pert.shape[0] != para.shape[0]:
        raise ValueError("nll_paraphrased and nll_perturbed differ in length")
    return np.exp(para - pert.mean(axis=1))


def truth_ratio_forget_stat(tr: Sequence[float]) -> np.ndarray:
    """Per-sample ``min(TR, 1/TR)`` (TOFU's forget-set truth-ratio statistic; mean is reported)."""
    t = _arr(tr, "truth_ratio")
    return np.minimum(t, 1.0 / t)


def truth_ratio_retain_stat(tr: Sequence[float]) -> np.ndarray:
    """Per-sample ``max(0, 1 - TR)`` (TOFU's retain/real-authors/world-facts statistic)."""
    return np.maximum(0.0, 1.0 - _arr(tr, "truth_ratio"))


@register_metric("forget_quality", higher_is_better=True, modalities=("llm",), consumes=("truth_ratio",))
def forget_quality(tr_model: Sequence[float], tr_retain: Sequence[float]) -> tuple[float, float]:
    """Forget quality: p-value of the two-sided two-sample Kolmogorov–Smirnov test between
    the model's and the retain model's per-sample forget-set truth ratios.

    **Inputs**: two arrays of truth ratios on the same forget set (the retain model's come
    from a reference artefact). **Output**: ``(p_value, ks_statistic)``.
    High p-value: the truth-ratio distribution is indistinguishable from a model never
    trained on the forget set. Computed with ``scipy.stats.ks_2samp`` (exact p-value for
    small samples, as TOFU). KS is invariant to the monotone map TR -> 1/TR, so it does not
    matter which way round the ratio is taken.
    **Values from the original paper**: the Phi-1.5 fine-tuned on all of TOFU against its
    retain90 model scores 2.19e-16 on forget10 (KS statistic 0.347).
    **Limitations**: depends on the forget-set size (more samples, smaller p-values); only
    comparable across runs with the same forget set and the same retain model.
    **Citation**: Maini et al. 2024, TOFU, Sec. 2.5.2.
    """
    from scipy.stats import ks_2samp

    a, b = _arr(tr_model, "tr_model"), _arr(tr_retain, "tr_retain")
    res = ks_2samp(a, b)
    return float(res.pvalue), float(res.statistic)


@register_metric("model_utility", higher_is_better=True, modalities=("llm",),
                 consumes=("probability", "rouge_l_recall", "truth_ratio"))
def model_utility(components: Sequence[float]) -> float:
    """Model utility: harmonic mean of the nine retain-side numbers.

    ``hmean(ROUGE, Prob., TR-stat)`` over the retain, real-authors and world-facts sets
    (TOFU Sec. 2.5.3), computed with ``scipy.stats.hmean``; any zero component makes it 0.
    **Values from the original paper**: 0.522 for the Phi-1.5 fine-tuned on all of TOFU.
    """
    from scipy.stats import hmean

    c = _arr(components, "components")
    if np.any(c < 0):
        raise ValueError("model utility components must be non-negative")
    if np.any(c == 0):
        return 0.0
    return float(hmean(c))


#: the nine model-utility components, as ``split/metric`` result keys
UTILITY_KEYS = tuple(f"{s}/{m}" for s in ("retain", "real_authors", "world_facts")
                     for m in ("rouge_l_recall", "probability", "truth_ratio"))


@register_metric("rouge1_recall", higher_is_better=True, modalities=("llm",), consumes=("generation", "answer"))
def rouge1_recall(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-1 recall of each generated answer against its reference, per sample.

    ``rouge_score`` ``RougeScorer(["rouge1"], use_stemmer=True)``: the fraction of the
    reference's unigrams (lower-cased, stemmed) that the generation contains, counted with
    multiplicity. open-unlearning logs it beside ROUGE-L (``eval_text_similarity``).
    **Limitations**: order-blind; lexical.

    >>> rouge1_recall(["paris is the capital"], ["the capital is paris, france"]).round(3).tolist()
    [0.8]
    """
    return _rouge_recall("rouge1", predictions, references)


@register_metric("truth_ratio_prob_mean", higher_is_better=True, modalities=("llm",),
                 consumes=("nll_paraphrased", "nll_perturbed"))
def truth_ratio_prob_mean(nll_paraphrased: Sequence[float], nll_perturbed: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-sample ``p_true / (p_true + p_false)`` (open-unlearning's ``prob_mean`` truth ratio).

    ``p_true = exp(-nll_paraphrased)``, ``p_false = exp(-mean_j nll_perturbed_j)`` (the
    geometric mean of the perturbed answers' length-normalised probabilities), i.e.
    ``1 / (1 + TR)`` with TOFU's :func:`truth_ratio`. The OpenUnlearning paper's
    "extent of knowledge" (Dorna et al., 2025; open-unlearning #163, ``aggregator: prob_mean``);
    the headline number is the mean. 1 = the truth is always preferred, 0.5 = no preference.

    >>> truth_ratio_prob_mean([1.0], [[1.0, 1.0]]).tolist()
    [0.5]
    """
    para = _arr(nll_paraphrased, "nll_paraphrased")
    pert = _arr(nll_perturbed, "nll_perturbed", 2)
    if pert.shape[0] != para.shape[0]:
        raise ValueError("nll_paraphrased and nll_perturbed differ in length")
    p_true, p_false = np.exp(-para), np.exp(-pert.mean(axis=1))
    return p_true / (p_true + p_false)
