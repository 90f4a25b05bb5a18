"""Exact memorisation and extraction strength against open-unlearning's definitions, written here
independently as its published loop (``src/evals/metrics/memorization.py`` at d3d7cf9)."""

import numpy as np
import pytest
import torch

from unlearnbench.errors import UserError
from unlearnbench.metrics.memorization import exact_memorization, extraction_strength


def _ou_es(preds: torch.Tensor, labels: torch.Tensor) -> float:
    valid_len = len(labels)
    for k in range(valid_len):
        if torch.equal(preds[k:], labels[k:]):
            break
    return 1 - (k / valid_len)


def _ou_em(preds: torch.Tensor, labels: torch.Tensor) -> float:
    return ((preds == labels).sum() / len(labels)).item()


def test_match_the_reference_loops_on_random_predictions():
    rng = np.random.default_rng(0)
    hits_all, es_ref, em_ref = [], [], []
    for _ in range(300):
        n = int(rng.integers(1, 30))
        labels = torch.tensor(rng.integers(0, 5, n))
        # mostly-right predictions with a few mistakes, sometimes none, sometimes at the end
        preds = labels.clone()
        for j in rng.choice(n, size=int(rng.integers(0, max(1, n // 3) + 1)), replace=False):
            preds[j] = (preds[j] + 1) % 5
        hits_all.append((preds == labels).numpy())
        es_ref.append(_ou_es(preds, labels))
        em_ref.append(_ou_em(preds, labels))
    np.testing.assert_allclose(extraction_strength(hits_all), es_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(exact_memorization(hits_all), em_ref, rtol=0, atol=1e-6)


def test_edge_cases_and_bad_input():
    assert extraction_strength([[0]]).tolist() == [1.0]  # OU's loop: k ends at T-1 = 0, so 1 - 0/1
    assert extraction_strength([[1]]).tolist() == [1.0]
    assert extraction_strength([[0, 0, 0, 0]]).tolist() == [0.25]  # OU's floor 1/T
    with pytest.raises(UserError):
        exact_memorization([[]])
