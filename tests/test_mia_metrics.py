"""MIA attacks, AUC and PrivLeak against independent references on fresh random inputs."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy.special import log_softmax as np_log_softmax
from scipy.stats import mannwhitneyu
from sklearn.metrics import auc as sk_auc
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnbench.errors import UserError
from unlearnbench.metrics import mia as M
from unlearnbench.metrics.muse import privleak, privleak_gap


@pytest.fixture
def rng():
    return np.random.default_rng(np.random.SeedSequence().entropy)  # fresh inputs every run


def _pairwise_auc(forget, holdout):
    """P(holdout > forget) + 0.5 P(tie), by brute force."""
    f, h = np.asarray(forget)[:, None], np.asarray(holdout)[None, :]
    return float(((h > f) + 0.5 * (h == f)).mean())


def test_auc_matches_mann_whitney_and_brute_force(rng):
    for _ in range(5):
        f = rng.normal(0, 1, rng.integers(2, 40)).round(1)  # rounding makes ties
        h = rng.normal(0.5, 1, rng.integers(2, 40)).round(1)
        u = mannwhitneyu(h, f, alternative="two-sided").statistic  # U of the holdout sample
        assert M.mia_auc(f, h) == pytest.approx(u / (len(f) * len(h)), abs=1e-12)
        assert M.mia_auc(f, h) == pytest.approx(_pairwise_auc(f, h), abs=1e-12)


def test_auc_convention_memorised_forget_set_gives_one():
    # loss-like scores: the model finds forget texts much more likely (lower loss)
    assert M.mia_auc([0.1, 0.2, 0.3], [2.0, 2.5, 3.0]) == 1.0
    assert M.mia_auc([2.0, 2.5], [0.1, 0.2]) == 0.0


def test_muse_auc_is_one_minus_ours(rng):
    """MUSE ``metrics/privleak.py`` ``sweep``: forget labelled 0, ``roc_curve(y, -score)``, ``auc``."""
    f, h = rng.normal(0, 1, 30).round(1), rng.normal(0.3, 1, 25).round(1)
    y = np.r_[np.zeros(len(f)), np.ones(len(h))]
    fpr, tpr, _ = roc_curve(y, -np.r_[f, h])
    assert sk_auc(fpr, tpr) == pytest.approx(1 - M.mia_auc(f, h), abs=1e-12)


def _token_lp(rng, n):
    return np.log(rng.dirichlet(np.ones(50), size=n)[:, 0] + 1e-9)


def test_loss_zlib_min_k_scores(rng):
    lp = _token_lp(rng, int(rng.integers(3, 60)))
    text = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"], 30))
    assert M.loss_score(lp) == pytest.approx(-sum(lp) / len(lp))
    assert M.zlib_score(lp, text) == pytest.approx((-sum(lp) / len(lp)) / len(zlib.compress(bytes(text, "utf-8"))))
    for k in (0.05, 0.2, 0.4, 1.0):
        n = max(1, int(len(lp) * k))
        lowest = sorted(lp.tolist())[:n]
        assert M.min_k_score(lp, k) == pytest.approx(-sum(lowest) / n)
    # k * T < 1 still uses one token (open-unlearning), where MUSE's int(k*T) would be empty
    assert M.min_k_score([-1.0, -3.0], 0.1) == pytest.approx(3.0)


def test_token_distribution_stats_against_numpy(rng):
    import torch

    B, T, V = 2, 5, 11
    logits = rng.normal(0, 3, (B, T, V))
    targets = rng.integers(0, V, (B, T))
    lp, mu, var = M.token_distribution_stats(torch.tensor(logits), torch.tensor(targets))
    for b in range(B):
        for t in range(T):
            logp = np_log_softmax(logits[b, t])
            p = np.exp(logp)
            m = float(np.sum(p * logp))
            v = float(np.sum(p * (logp - m) ** 2))  # variance as E[(X - mu)^2]
            assert lp[b, t].item() == pytest.approx(logp[targets[b, t]], abs=1e-5)
            assert mu[b, t].item() == pytest.approx(m, abs=1e-5)
            assert var[b, t].item() == pytest.approx(v, abs=1e-4)


def test_min_k_plus_plus_against_open_unlearning_formula(rng):
    """open-unlearning ``mia/min_k_plus_plus.py``: sigma = clamp(E[lp^2]-mu^2, 1e-6); -mean(lowest k of (lp-mu)/sqrt(sigma))."""
    import torch

    T, V = int(rng.integers(4, 30)), 17
    logits = torch.tensor(rng.normal(0, 2, (T, V)))
    targets = torch.tensor(rng.integers(0, V, T))
    all_probs = torch.log_softmax(logits, -1)
    target_prob = all_probs.gather(-1, targets[:, None]).squeeze(-1)
    mu = (torch.exp(all_probs) * all_probs).sum(-1)
    sigma = torch.clamp((torch.exp(all_probs) * torch.square(all_probs)).sum(-1) - torch.square(mu), min=1e-6)
    scores = ((target_prob - mu) / torch.sqrt(sigma)).numpy()
    for k in (0.2, 0.4):
        expected = -np.mean(sorted(scores)[: max(1, int(len(scores) * k))])
        got = M.min_k_plus_plus_score(target_prob.numpy(), mu.numpy(), (sigma).numpy(), k)
        assert got == pytest.approx(expected, rel=1e-9)


def test_reference_attack_auc(rng):
    f, h = rng.normal(1, 1, 12), rng.normal(2, 1, 9)
    fr, hr = rng.normal(1.5, 1, 12), rng.normal(1.5, 1, 9)
    y = np.r_[np.zeros(12), np.ones(9)]
    assert M.mia_reference(f, h, fr, hr) == pytest.approx(roc_auc_score(y, np.r_[f - fr, h - hr]))


def _open_unlearning_mia_auc(forget_scores, holdout_scores):
    """open-unlearning ``src/evals/metrics/mia/utils.py`` ``mia_auc``: labels forget 0 / holdout 1."""
    scores = np.array(list(forget_scores) + list(holdout_scores))
    labels = np.array([0] * len(forget_scores) + [1] * len(holdout_scores))
    return roc_auc_score(labels, scores)


def _open_unlearning_privleak(score, ref):
    """open-unlearning ``src/evals/metrics/privacy.py`` ``privleak`` (lines ~90-92 of the version with
    ``ks_test``): ``score = 1 - score; ref = 1 - ref; (score - ref) / (ref + 1e-10) * 100``."""
    score, ref = 1 - score, 1 - ref
    return (score - ref) / (ref + 1e-10) * 100


def _muse_privleak(forget, holdout, forget_ret, holdout_ret):
    """MUSE ``eval.py``: (auc - AUC_RETRAIN) / AUC_RETRAIN * 100 with ``metrics/privleak.py`` ``sweep`` AUCs."""
    def sweep(f, h):
        y = np.array([0] * len(f) + [1] * len(h))
        fpr, tpr, _ = roc_curve(y, -np.r_[f, h])
        return sk_auc(fpr, tpr)

    a, r = sweep(forget, holdout), sweep(forget_ret, holdout_ret)
    return (a - r) / r * 100


def test_privleak_matches_open_unlearning_and_muse_on_shared_fixture(rng):
    for shift in (-1.5, 0.0, 0.7):
        n = 40
        unl_f, unl_h = rng.normal(shift, 1, n), rng.normal(0, 1, n)          # per-sample Min-K% scores
        ret_f, ret_h = rng.normal(0, 1, n), rng.normal(0.1, 1, n)           # retrained model's scores
        auc, auc_ret = M.mia_auc(unl_f, unl_h), M.mia_auc(ret_f, ret_h)
        ours = privleak(auc, auc_ret)
        ou = _open_unlearning_privleak(_open_unlearning_mia_auc(unl_f, unl_h), _open_unlearning_mia_auc(ret_f, ret_h))
        assert ours == pytest.approx(ou, rel=1e-8, abs=1e-6)
        assert ours == pytest.approx(_muse_privleak(unl_f, unl_h, ret_f, ret_h), rel=1e-9, abs=1e-9)
        assert privleak_gap(auc, auc_ret) == pytest.approx(abs(ours))


def test_privleak_signs():
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(1.0, 0.5) == -100.0          # still remembers everything: under-unlearning
    assert privleak(0.2, 0.5) == pytest.approx(60.0)  # forget texts now look unseen-er than unseen: over-unlearning


@pytest.mark.parametrize("call", [
    lambda: M.mia_auc([], [1.0]),
    lambda: M.mia_auc([np.nan], [1.0]),
    lambda: M.min_k_score([-1.0], k=0.0),
    lambda: M.min_k_score([], k=0.4),
    lambda: M.min_k_plus_plus_score([-1.0, -2.0], [0.0], [1.0, 1.0]),
    lambda: M.zlib_score([-1.0], ""),
    lambda: M.mia_reference([1.0], [2.0], [1.0, 2.0], [2.0]),
    lambda: privleak(0.5, 1.0),
    lambda: privleak(1.2, 0.5),
])
def test_user_errors(call):
    with pytest.raises(UserError):
        call()


def test_registered():
    from unlearnbench.registry import METRICS

    for name in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference", "privleak"):
        info = METRICS.get(name)
        assert info.modalities == ("llm",)
        assert info.higher_is_better is False


def test_mia_accuracy_against_threshold_sweep(rng):
    f, h = rng.normal(0, 1, 15).round(1), rng.normal(0.8, 1, 11).round(1)
    best = max((1 + np.mean(h >= t) - np.mean(f >= t)) / 2 for t in list(np.r_[f, h]) + [np.inf])
    assert M.mia_accuracy(f, h) == pytest.approx(best)
