"""Classification-unlearning metrics (SalUn) against independent references."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.svm import SVC

from unlearnbench.errors import UserError
from unlearnbench.metrics import classification as C
from unlearnbench.registry import METRICS


def test_accuracies_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 10, 500))
    correct = (pred == y).astype(int)
    ref = 100 * accuracy_score(y, pred)
    assert C.ra(correct) == pytest.approx(ref)
    assert C.ta(correct) == pytest.approx(ref)
    assert C.ua(correct) == pytest.approx(100 - ref)


def test_mia_efficacy_hand_built():
    # members (retain) are confident, non-members (test) are not: a clean threshold near 0.5
    retain = np.concatenate([np.linspace(0.9, 1.0, 50), np.linspace(0.95, 1.0, 50)])
    test = np.linspace(0.0, 0.3, 50)
    # the attacker trains on the FIRST len(test) retain samples only (SalUn's shadow set)
    forget_forgotten = np.full(20, 0.1)  # looks like test data -> non-member
    forget_kept = np.full(20, 0.97)  # looks like training data -> member
    mixed = np.concatenate([np.full(5, 0.05), np.full(15, 0.99)])
    assert C.mia_efficacy(retain, test, forget_forgotten) == 100.0
    assert C.mia_efficacy(retain, test, forget_kept) == 0.0
    assert C.mia_efficacy(retain, test, mixed) == 25.0


def test_mia_efficacy_equals_direct_svc_recipe():
    rng = np.random.default_rng(1)
    retain, test, forget = rng.beta(5, 1, 300), rng.beta(2, 2, 120), rng.beta(3, 2, 80)
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(
        np.concatenate([retain[:120], test])[:, None], np.r_[np.ones(120), np.zeros(120)])
    expected = 100 * np.mean(clf.predict(forget[:, None]) == 0)
    assert C.mia_efficacy(retain, test, forget) == pytest.approx(expected)
    # only the first len(test) retain samples matter
    assert C.mia_efficacy(np.r_[retain[:120], np.zeros(50)], test, forget) == pytest.approx(expected)


def test_avg_gap_and_rte():
    a = {"ua": 5.0, "ra": 100.0, "ta": 94.0, "mia_efficacy": 12.0}
    b = {"ua": 7.0, "ra": 98.0, "ta": 95.0, "mia_efficacy": 9.0}
    assert C.avg_gap(a, b) == pytest.approx((2 + 2 + 1 + 3) / 4)
    assert C.avg_gap(a, a) == 0.0
    assert C.rte(30.0) == 0.5
    with pytest.raises(UserError):
        C.avg_gap({"ua": 1.0}, b)
    with pytest.raises(UserError):
        C.rte(-1)


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError):
        C.ua([])
    with pytest.raises(UserError):
        C.ra([0.5, 1])
    with pytest.raises(UserError):
        C.mia_efficacy([0.9, np.nan], [0.1], [0.2])


def test_registration_and_doctests():
    assert set(METRICS.meta("ua")["modality"].split(",")) == {"classifier", "diffusion"}
    assert METRICS.meta("avg_gap")["higher_is_better"] is False
    assert METRICS.meta("rte")["higher_is_better"] is False
    assert METRICS.meta("mia_efficacy")["higher_is_better"] is True
    res = doctest.testmod(C)
    assert res.attempted >= 5 and res.failed == 0
