"""Membership-inference attacks on language models: per-sample scores, AUC, and the logits helper.

Every attack turns one text's per-token statistics into one **score** per sample, and the
attack's strength is the ROC AUC of those scores between the forget set and a holdout set
the model never saw (``mia_auc``). Scores and AUC follow open-unlearning's convention
(``src/evals/metrics/mia/utils.py``, ``mia_auc``: ``labels = [0]*len(forget) + [1]*len(holdout)``,
``roc_auc_score(labels, scores)``; docstring: "auc is 1 when the forget data is much more
likely than the holdout data"):

* a score is *loss-like*: **higher means less likely a member** (loss, Min-K% of negative
  log-probs, ...);
* the holdout set is the positive class, so ``AUC = P(score_holdout > score_forget)``;
  AUC 1 = the forget texts are far more likely under the model than holdout texts (the
  model still remembers them), 0.5 = no membership signal (what an exactly retrained model
  gives when forget and holdout come from the same distribution).

MUSE (Shi et al., 2024, ``swj0419/muse_bench`` ``metrics/privleak.py``, ``sweep``) uses the
mirror image: the same labels with ``roc_curve(y, -score)``, so ``AUC_MUSE = 1 - AUC_here``
exactly (ties included). :func:`unlearnbench.metrics.muse.privleak` converts.

Attacks (token log-probs ``lp_t = log p(x_t | x_<t)`` over the text's tokens):

=======================  ====================================================================
``mia_loss``             ``-mean_t lp_t`` (Yeom et al., 2018; open-unlearning ``loss.py``)
``mia_zlib``             ``-mean_t lp_t / len(zlib.compress(text.encode('utf-8')))``
                         (Carlini et al., 2021; open-unlearning ``zlib.py``; MUSE ``PPL/zlib``)
``mia_min_k``            ``-mean`` of the ``max(1, int(k*T))`` smallest ``lp_t`` (Shi et al.,
                         2024 "Min-K% Prob"; open-unlearning ``min_k.py``; MUSE ``Min-40%``)
``mia_min_k_plus_plus``  as Min-K% on ``z_t = (lp_t - mu_t) / sqrt(max(var_t, 1e-6))`` where
                         ``mu_t, var_t`` are the mean and variance of ``log p(.|x_<t)`` under
                         the model's own next-token distribution (Zhang et al., 2024
                         "Min-K%++"; open-unlearning ``min_k_plus_plus.py``)
``mia_reference``        ``loss_model - loss_reference`` (Carlini et al., 2021 reference
                         calibration; open-unlearning ``reference.py``); MUSE's reference is
                         the retrained model
=======================  ====================================================================

Differences noted: MUSE uses ``int(k*T)`` tokens (empty, hence NaN, for ``k*T < 1``);
open-unlearning and this module use ``max(1, int(k*T))``. Open-unlearning's default ``k`` is
0.2 in code but its MUSE configs, like MUSE's PrivLeak key ``forget_holdout_Min-40%``, use 0.4,
which is the default here.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import register_metric

#: fraction of lowest-probability tokens used by Min-K% and Min-K%++ (MUSE's ``Min-40%``)
DEFAULT_K = 0.4
#: variance floor of Min-K%++ (open-unlearning ``min_k_plus_plus.py``: ``torch.clamp(sigma, min=1e-6)``)
VAR_FLOOR = 1e-6

ATTACKS = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus")


# -- validation ---------------------------------------------------------------------------
def _tokens(lp: Sequence[float], what: str = "token log-probs") -> np.ndarray:
    arr = np.asarray(lp, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise UserError(f"{what}: a text with no scored tokens has no membership score")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{what}: non-finite values")
    return arr


def _check_k(k: float) -> None:
    if not (0.0 < float(k) <= 1.0):
        raise UserError(f"Min-K% needs 0 < k <= 1, got k={k}")


# -- per-sample scores (higher = less likely a member) ------------------------------------
def loss_score(token_logprobs: Sequence[float]) -> float:
    """Mean negative log-likelihood of the text's tokens."""
    return float(-_tokens(token_logprobs).mean())


def zlib_entropy(text: str) -> int:
    """Length in bytes of the zlib-compressed UTF-8 text (Carlini et al., 2021)."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_score(token_logprobs: Sequence[float], text: str) -> float:
    """Loss divided by the zlib entropy of ``text``."""
    if not text:
        raise UserError("zlib attack needs the sample's text, got an empty string")
    return loss_score(token_logprobs) / zlib_entropy(text)


def _min_k_mean(values: np.ndarray, k: float) -> float:
    _check_k(k)
    n = max(1, int(len(values) * k))
    return float(-np.sort(values)[:n].mean())


def min_k_score(token_logprobs: Sequence[float], k: float = DEFAULT_K) -> float:
    """Negative mean of the ``max(1, int(k*T))`` lowest token log-probs."""
    return _min_k_mean(_tokens(token_logprobs), k)


def min_k_plus_plus_score(token_logprobs: Sequence[float], mu: Sequence[float], var: Sequence[float],
                          k: float = DEFAULT_K) -> float:
    """Min-K% over the standardised log-probs ``(lp - mu) / sqrt(max(var, 1e-6))``."""
    lp = _tokens(token_logprobs)
    m = _tokens(mu, "per-token means")
    v = _tokens(var, "per-token variances")
    if not (lp.shape == m.shape == v.shape):
        raise UserError(f"Min-K%++ needs as many means/variances as tokens ({lp.size}, {m.size}, {v.size})")
    z = (lp - m) / np.sqrt(np.maximum(v, VAR_FLOOR))
    return _min_k_mean(z, k)


def reference_score(loss_model: float, loss_reference: float) -> float:
    """Model loss minus the reference model's loss on the same text."""
    return float(loss_model) - float(loss_reference)


def all_scores(token_logprobs: Sequence[float], mu: Sequence[float] | None, var: Sequence[float] | None,
               text: str, k: float = DEFAULT_K) -> dict[str, float]:
    """Every reference-free attack's score for one text (``mia_min_k_plus_plus`` needs mu/var)."""
    out = {"mia_loss": loss_score(token_logprobs), "mia_zlib": zlib_score(token_logprobs, text),
           "mia_min_k": min_k_score(token_logprobs, k)}
    if mu is not None and var is not None:
        out["mia_min_k_plus_plus"] = min_k_plus_plus_score(token_logprobs, mu, var, k)
    return out


# -- the inference-side helper: per-token statistics from logits ---------------------------
def token_distribution_stats(logits, targets, mask=None):
    """Per-token ``(log p(target), mean, variance)`` of ``log p(.)`` under each next-token distribution.

    Inputs (torch tensors): ``logits`` ``[B, T, V]`` already aligned so that ``logits[:, t]``
    predicts ``targets[:, t]`` (i.e. the model's logits shifted by one), ``targets`` ``[B, T]``
    token ids, optional boolean ``mask`` ``[B, T]`` of positions to keep.

    Returns three float32 tensors ``[B, T]``: ``lp = log_softmax(logits)[target]``,
    ``mu = sum_v p_v log p_v`` and ``var = sum_v p_v (log p_v)^2 - mu^2`` (the mean and variance
    of the log-probability of a token drawn from the model's own distribution; Zhang et al.,
    2024, Eq. 2). Masked-out positions are 0. Computed in float32 whatever the logits' dtype.
    This is what an inference step must keep for Min-K%++; every other attack needs ``lp`` only.
    """
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    lp = logp.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    mu = (p * logp).sum(-1)
    var = (p * logp.square()).sum(-1) - mu.square()
    if mask is not None:
        m = mask.to(lp.dtype)
        lp, mu, var = lp * m, mu * m, var * m
    return lp, mu, var


# -- AUC ----------------------------------------------------------------------------------
def _scores(x: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise UserError(f"membership AUC needs at least one {what} score")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"membership AUC: non-finite {what} scores")
    return arr


def mia_auc(forget_scores: Sequence[float], holdout_scores: Sequence[float]) -> float:
    """ROC AUC with the holdout set as the positive class (open-unlearning's convention).

    ``AUC = P(score_holdout > score_forget) + 0.5 P(tie)``: 1 when the model finds forget
    texts far more likely than holdout texts, 0.5 when it cannot tell them apart.

    >>> mia_auc([0.1, 0.2], [0.9, 1.0])
    1.0
    """
    from sklearn.metrics import roc_auc_score

    f, h = _scores(forget_scores, "forget"), _scores(holdout_scores, "holdout")
    labels = np.r_[np.zeros(f.size), np.ones(h.size)]
    return float(roc_auc_score(labels, np.r_[f, h]))


def _auc_metric(doc_attack: str):
    def fn(forget_scores: Sequence[float], holdout_scores: Sequence[float]) -> float:
        return mia_auc(forget_scores, holdout_scores)

    fn.__doc__ = f"Membership AUC of the {doc_attack} attack, forget vs holdout (see :func:`mia_auc`)."
    return fn


_CARD = ("Closer to the retrained model's AUC (about 0.5) is better; stored as lower-is-better "
         "because the usual failure is a model that still remembers (AUC near 1).")

mia_loss = register_metric("mia_loss", higher_is_better=False, modalities=("llm",), consumes=("mia_loss",),
                           description="Loss attack AUC, forget vs holdout. " + _CARD)(_auc_metric("loss"))
mia_zlib = register_metric("mia_zlib", higher_is_better=False, modalities=("llm",), consumes=("mia_zlib",),
                           description="zlib-normalised loss attack AUC, forget vs holdout. " + _CARD)(_auc_metric("zlib"))
mia_min_k = register_metric("mia_min_k", higher_is_better=False, modalities=("llm",), consumes=("mia_min_k",),
                            description="Min-K% Prob attack AUC (k=0.4), forget vs holdout. " + _CARD)(_auc_metric("Min-K%"))
mia_min_k_plus_plus = register_metric(
    "mia_min_k_plus_plus", higher_is_better=False, modalities=("llm",), consumes=("mia_min_k_plus_plus",),
    description="Min-K%++ attack AUC (k=0.4), forget vs holdout. " + _CARD)(_auc_metric("Min-K%++"))


@register_metric("mia_reference", higher_is_better=False, modalities=("llm",), consumes=("mia_loss",),
                 description="Reference-calibrated loss attack AUC (model loss - reference loss). " + _CARD)
def mia_reference(forget_loss: Sequence[float], holdout_loss: Sequence[float],
                  forget_ref_loss: Sequence[float], holdout_ref_loss: Sequence[float]) -> float:
    """AUC of ``loss - reference_loss`` between forget and holdout (reference = the retrained model).

    Per-sample losses of the scored model and of the reference model on the same texts,
    in the same order.
    """
    f, fr = _scores(forget_loss, "forget"), _scores(forget_ref_loss, "forget reference")
    h, hr = _scores(holdout_loss, "holdout"), _scores(holdout_ref_loss, "holdout reference")
    if f.size != fr.size or h.size != hr.size:
        raise UserError("mia_reference: the reference losses must cover the same samples as the model's")
    return mia_auc(f - fr, h - hr)


def mia_accuracy(forget_scores: Sequence[float], holdout_scores: Sequence[float]) -> float:
    """Best balanced accuracy of a threshold on the scores, ``max(1 - (FPR + 1 - TPR)/2)``, holdout positive.

    MUSE's ``sweep`` reports the same quantity on its mirrored scores (``-score``).
    """
    from sklearn.metrics import roc_curve

    f, h = _scores(forget_scores, "forget"), _scores(holdout_scores, "holdout")
    fpr, tpr, _ = roc_curve(np.r_[np.zeros(f.size), np.ones(h.size)], np.r_[f, h])
    return float(np.max(1 - (fpr + (1 - tpr)) / 2))

