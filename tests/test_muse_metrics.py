"""MUSE VerbMem / KnowMem (ROUGE-L F1) against an independent LCS implementation and rouge_score."""

from __future__ import annotations

import re

import numpy as np
import pytest

from unlearnbench.errors import UserError
from unlearnbench.metrics import muse as MU

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "news", "Mayor", "river", "42"]


def _lcs(a, b):
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            dp[i + 1][j + 1] = dp[i][j] + 1 if x == y else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


def _rouge_l_f1_ref(pred: str, ref: str) -> float:
    """ROUGE-L F1 with rouge_score's default tokenisation (lower-case, [a-z0-9]+ tokens), no stemming."""
    tok = lambda s: re.sub(r"[^a-z0-9]+", " ", s.lower()).split()  # noqa: E731
    p, r = tok(pred), tok(ref)
    if not p or not r:
        return 0.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    prec, rec = lcs / len(p), lcs / len(r)
    return 2 * prec * rec / (prec + rec)


@pytest.fixture
def rng():
    return np.random.default_rng(np.random.SeedSequence().entropy)


def _sentences(rng, n):
    return [" ".join(rng.choice(WORDS, rng.integers(1, 12))) + rng.choice([".", "!", ""]) for _ in range(n)]


def test_rouge_l_f1_against_lcs_reference(rng):
    preds, refs = _sentences(rng, 30), _sentences(rng, 30)
    got = MU.rouge_l_f1(preds, refs)
    want = [_rouge_l_f1_ref(p, r) for p, r in zip(preds, refs)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_rouge_l_f1_is_symmetric_f_and_not_recall():
    # F1 differs from TOFU's recall when the prediction is longer than the reference
    assert MU.rouge_l_f1(["the cat sat on the mat"], ["the cat"])[0] == pytest.approx(2 * (2 / 6) * 1 / (2 / 6 + 1))


def test_stemming_setting_matters():
    pred, ref = ["the dogs were running"], ["the dog was run"]
    plain = MU.rouge_l_f1(pred, ref, use_stemmer=False)[0]
    stem = MU.rouge_l_f1(pred, ref, use_stemmer=True)[0]
    assert plain == pytest.approx(_rouge_l_f1_ref(pred[0], ref[0]))
    assert stem > plain  # open-unlearning's use_stemmer=True matches dogs/dog and running/run


def test_verbmem_knowmem_are_means(rng):
    preds, refs = _sentences(rng, 9), _sentences(rng, 9)
    mean = float(np.mean([_rouge_l_f1_ref(p, r) for p, r in zip(preds, refs)]))
    for fn in (MU.verbmem_f, MU.knowmem_f, MU.knowmem_r):
        assert fn(preds, refs) == pytest.approx(mean)


def test_knowmem_prompt_and_stop_strings():
    icl = [("Who won?", "Ada."), ("Where?", "Oslo.")]
    assert MU.knowmem_prompt("When?", icl) == (
        "Question: Who won?\nAnswer: Ada.\n\nQuestion: Where?\nAnswer: Oslo.\n\nQuestion: When?\nAnswer: ")
    assert MU.strip_knowmem_answer("In May.\n\nQuestion: next") == "In May."
    assert MU.strip_knowmem_answer("In May.\nQuestion: x") == "In May."
    assert MU.strip_knowmem_answer("Ada Question: x") == "Ada "


@pytest.mark.parametrize("call", [
    lambda: MU.rouge_l_f1(["a"], ["a", "b"]),
    lambda: MU.rouge_l_f1("a", "a"),
    lambda: MU.verbmem_f([], []),
])
def test_user_errors(call):
    with pytest.raises(UserError):
        call()


def test_registered_directions():
    from unlearnbench.registry import METRICS

    assert METRICS.get("verbmem").higher_is_better is False
    assert METRICS.get("knowmem").higher_is_better is True  # forget/knowmem results flip it, as TOFU's probability
