"""Token-level memorisation metrics: exact memorisation and extraction strength.

Both read one per-sample quantity: ``hits``, for each scored token of an answer whether the
model's most likely next token (argmax over the vocabulary, teacher-forced on the true
prefix) *is* that token. open-unlearning computes them on the forget set's gold answers
(``src/evals/metrics/memorization.py``), dropping the last scored token (the appended EOS;
``tokenwise_vocab_logprobs``: ``actual_indices[:-1]``) -- callers pass ``hits`` without it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import register_metric


def _hits(h: Sequence) -> np.ndarray:
    a = np.asarray(h, dtype=bool).reshape(-1)
    if a.size == 0:
        raise UserError("a sample with no scored tokens has no memorisation score")
    return a


@register_metric("exact_memorization", higher_is_better=False, modalities=("llm",), consumes=("hits",),
                 description="Exact memorisation: fraction of answer tokens the model predicts greedily "
                             "(teacher-forced); mean over forget samples")
def exact_memorization(hits: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per-sample exact memorisation ``EM = (1/T) sum_t [argmax_v p(v | x_<t) = x_t]``.

    **Inputs**: for each sample the T booleans ``argmax == target`` over its answer tokens.
    **Output**: (n,) values in [0, 1]; the headline number is their mean. On the forget set
    lower means less memorised (a model that never saw the data is the target, not 0).
    **Source**: Tirumala et al., 2022, "Memorization Without Overfitting" (exact
    memorisation); open-unlearning ``exact_memorization`` (``(preds == labels).sum() / len``).
    **Limitations**: teacher-forced: one early mistake does not derail the rest, unlike
    free generation.

    >>> exact_memorization([[1, 1, 0, 1]]).tolist()
    [0.75]
    """
    return np.array([_hits(h).mean() for h in hits], dtype=np.float64)


@register_metric("extraction_strength", higher_is_better=False, modalities=("llm",), consumes=("hits",),
                 description="Extraction strength: 1 - (shortest prefix after which every answer token is "
                             "predicted greedily) / length; mean over forget samples")
def extraction_strength(hits: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per-sample extraction strength ``ES = 1 - k / T``.

    ``k`` is the smallest index such that every token from ``k`` on is the model's greedy
    (teacher-forced) prediction: the shortest prefix that "extracts" the rest of the answer.
    As in open-unlearning's loop (``for k in range(T): if preds[k:] == labels[k:]: break``),
    when no suffix matches -- not even the last token -- ``k`` ends at ``T - 1``, so the
    floor is ``1 / T``, not 0 (and a one-token answer always scores 1).

    **Inputs**: per sample the T booleans ``argmax == target``. **Output**: (n,) values in
    (0, 1]; 1 = the whole answer follows from the prompt alone.
    **Source**: Carlini et al., 2021 (extractable memorisation); the prefix-length form of
    open-unlearning's ``extraction_strength`` (``src/evals/metrics/memorization.py``).
    **Limitations**: counts only a suffix of correct tokens; a single wrong last token
    gives the floor.

    >>> extraction_strength([[0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]]).tolist()
    [0.75, 1.0, 0.25]
    """
    out = []
    for h in hits:
        a = _hits(h)
        n = a.size
        wrong = np.flatnonzero(~a)
        k = 0 if wrong.size == 0 else int(wrong[-1]) + 1
        out.append(1.0 - min(k, n - 1) / n)
    return np.array(out, dtype=np.float64)
