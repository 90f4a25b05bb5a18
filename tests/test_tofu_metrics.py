"""TOFU metric functions against independent references (scipy, hand-written LCS, direct formulas)."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from unlearnbench.metrics import (
    forget_quality, model_utility, normalized_probability, probability, rouge_l_recall, truth_ratio,
    truth_ratio_forget_stat, truth_ratio_retain_stat,
)


def _lcs(a, b):
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            dp[i + 1][j + 1] = dp[i][j] + 1 if x == y else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


def _words(s):
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).split()


def test_probability_is_exp_of_minus_mean_token_nll():
    rng = np.random.default_rng(0)
    token_logps = [rng.normal(-1, 0.5, size=k) for k in (3, 7, 1)]
    mean_nll = [-lp.mean() for lp in token_logps]
    expected = [math.prod(math.exp(x) for x in lp) ** (1 / len(lp)) for lp in token_logps]  # geometric mean
    np.testing.assert_allclose(probability(mean_nll), expected, rtol=1e-12)


def test_normalized_probability_matches_definition():
    rng = np.random.default_rng(1)
    nll, pert = rng.uniform(0, 3, 10), rng.uniform(0, 3, (10, 3))
    p, q = np.exp(-nll), np.exp(-pert)
    expected = [p[i] / (p[i] + q[i].sum()) for i in range(10)]
    np.testing.assert_allclose(normalized_probability(nll, pert), expected, rtol=1e-12)


def test_truth_ratio_is_geometric_mean_of_perturbed_over_paraphrased():
    rng = np.random.default_rng(2)
    para, pert = rng.uniform(0.1, 4, 20), rng.uniform(0.1, 4, (20, 5))
    p_para, p_pert = np.exp(-para), np.exp(-pert)
    expected = stats.gmean(p_pert, axis=1) / p_para
    tr = truth_ratio(para, pert)
    np.testing.assert_allclose(tr, expected, rtol=1e-12)
    np.testing.assert_allclose(truth_ratio_forget_stat(tr), [min(t, 1 / t) for t in expected], rtol=1e-12)
    np.testing.assert_allclose(truth_ratio_retain_stat(tr), [max(0.0, 1 - t) for t in expected], rtol=1e-12)


@pytest.mark.parametrize("n,m,seed", [(10, 10, 0), (40, 25, 1), (300, 300, 2)])
def test_forget_quality_is_scipy_ks_pvalue(n, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 1, n), rng.lognormal(0.3, 1, m)
    p, stat = forget_quality(a, b)
    ref = stats.ks_2samp(a, b)
    assert p == pytest.approx(ref.pvalue, rel=1e-12) and stat == pytest.approx(ref.statistic, rel=1e-12)
    # invariant to which way round the ratio is taken (TOFU logs store 1/TR)
    assert forget_quality(1 / a, 1 / b)[0] == pytest.approx(ref.pvalue, rel=1e-12)


def test_forget_quality_same_distribution_is_one_and_different_is_tiny():
    x = np.linspace(0.1, 2, 50)
    assert forget_quality(x, x)[0] == pytest.approx(1.0)
    assert forget_quality(x, x + 10)[0] < 1e-20


def test_model_utility_is_scipy_hmean_and_zero_when_a_component_is_zero():
    rng = np.random.default_rng(3)
    c = rng.uniform(0.05, 1, 9)
    assert model_utility(c) == pytest.approx(stats.hmean(c), rel=1e-12)
    assert model_utility(np.r_[c[:8], 0.0]) == 0.0


def test_rouge_l_recall_matches_hand_lcs_without_stemming_effects():
    preds = ["the cat sat on the mat", "a b c d", "nothing in common", "Paris is the capital of France, of course."]
    refs = ["the cat is on the mat", "a c", "totally different words", "The capital of France is Paris."]
    got = rouge_l_recall(preds, refs)
    expected = [_lcs(_words(p), _words(r)) / len(_words(r)) for p, r in zip(preds, refs)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_rouge_l_recall_uses_the_stemmer():
    assert rouge_l_recall(["she was running quickly"], ["she runs"])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [[], [[1.0]], [np.nan]])
def test_bad_inputs_raise(bad):
    with pytest.raises(ValueError):
        probability(bad)
