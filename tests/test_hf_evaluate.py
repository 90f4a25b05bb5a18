"""Every metric through Hugging Face ``evaluate``: ``evaluate.load(<local folder>)`` offline, same numbers.

Each example gives the evaluate-style columns and the expected value, computed here without the
module (numpy / scipy / scikit-learn where the formula is short, else the registered metric
function called with its own arguments), so the test fails if the column -> argument mapping is
wrong. One module-scoped import of ``evaluate`` (a few seconds).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

evaluate = pytest.importorskip("evaluate")

from unlearnbench.catalog import load_all  # noqa: E402
from unlearnbench.metric import declaration  # noqa: E402
from unlearnbench.registry import METRICS  # noqa: E402

RNG = np.random.default_rng(0)
F, H = RNG.uniform(0, 2, 7), RNG.uniform(0.5, 3, 5)          # forget / holdout scores
R, T, FC = RNG.uniform(0.5, 1, 12), RNG.uniform(0, 1, 6), RNG.uniform(0, 1, 4)  # retain / test / forget confidences
EMB_I, EMB_T = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
LL, ANS = RNG.normal(size=(5, 4)), [0, 1, 2, 3, 0]
FEAT_G, FEAT_R = RNG.normal(size=(12, 3)), RNG.normal(0.3, 1, size=(15, 3))
TEXT_P, TEXT_R = ["the cat sat on the mat", "a dog ran"], ["the cat sat", "a dog ran far away"]


def fn(name):
    info = METRICS.get(name)
    return getattr(info, "fn", info)


def two_sets(a, b, col):
    return {col: list(a) + list(b), "set": [0] * len(a) + [1] * len(b)}


def auc(f, h):  # holdout is the positive class (metrics/mia.py convention)
    return roc_auc_score(np.r_[np.zeros(len(f)), np.ones(len(h))], np.r_[f, h])


EXAMPLES = {
    "ua": (lambda: ({"forget_correct": [1, 0, 0, 1, 1]}, 40.0)),
    "ra": (lambda: ({"retain_correct": [1, 1, 1, 0]}, 75.0)),
    "ta": (lambda: ({"test_correct": [1, 0]}, 50.0)),
    "rte": (lambda: ({"unlearn_seconds": [90.0]}, 1.5)),
    "avg_gap": (lambda: ({"metric": ["ua", "ra", "ta", "mia_efficacy"], "values": [5, 100, 94, 12],
                          "retrain": [6, 99, 94, 14]}, np.mean([1, 1, 0, 2]))),
    "mia_efficacy": (lambda: ({"confidence": list(R) + list(T) + list(FC),
                               "set": ["retain"] * 12 + ["test"] * 6 + ["forget"] * 4},
                              fn("mia_efficacy")(retain_confidence=R, test_confidence=T, forget_confidence=FC))),
    "mia_loss": (lambda: (two_sets(F, H, "score"), auc(F, H))),
    "mia_zlib": (lambda: (two_sets(F, H, "score"), auc(F, H))),
    "mia_min_k": (lambda: (two_sets(F, H, "score"), auc(F, H))),
    "mia_min_k_plus_plus": (lambda: (two_sets(F, H, "score"), auc(F, H))),
    "mia_reference": (lambda: ({"loss": list(F) + list(H), "reference_loss": list(F * 0.5) + list(H * 0.9),
                                "set": [0] * 7 + [1] * 5}, auc(F - F * 0.5, H - H * 0.9))),
    "forget_quality": (lambda: (two_sets(F, H, "truth_ratio"), stats.ks_2samp(F, H).pvalue)),
    "privleak": (lambda: ({"auc": [0.8], "auc_retrain": [0.5]}, ((1 - 0.8) - 0.5) / 0.5 * 100)),
    "privleak_gap": (lambda: ({"auc": [0.8], "auc_retrain": [0.5]}, abs(((1 - 0.8) - 0.5) / 0.5 * 100))),
    "probability": (lambda: ({"nll_answer": list(F)}, float(np.mean(np.exp(-F))))),
    "model_utility": (lambda: ({"components": list(R[:9])}, stats.hmean(R[:9]))),
    "truth_ratio": (lambda: ({"nll_paraphrased": list(F[:3]), "nll_perturbed": [list(H[:2]), list(H[2:4]), list(H[3:5])]},
                             float(np.mean(fn("truth_ratio")(F[:3], [H[:2], H[2:4], H[3:5]]))))),
    "rouge_l_recall": (lambda: ({"predictions": TEXT_P, "references": TEXT_R},
                                float(np.mean(fn("rouge_l_recall")(TEXT_P, TEXT_R))))),
    "verbmem": (lambda: ({"predictions": TEXT_P, "references": TEXT_R}, fn("verbmem")(TEXT_P, TEXT_R))),
    "knowmem": (lambda: ({"predictions": TEXT_P, "references": TEXT_R}, fn("knowmem")(TEXT_P, TEXT_R))),
    "mcq_accuracy": (lambda: ({"choice_logliks": LL.tolist(), "answers": ANS}, float(np.mean(LL.argmax(1) == ANS)))),
    "forget_accuracy": (lambda: ({"choice_logliks": LL.tolist(), "answers": ANS}, float(np.mean(LL.argmax(1) == ANS)))),
    "utility_accuracy": (lambda: ({"choice_logliks": LL.tolist(), "answers": ANS}, float(np.mean(LL.argmax(1) == ANS)))),
    "ira": (lambda: ({"pred": [1, 2, 3, 3], "target": [1, 2, 0, 3]}, 75.0)),
    "cra": (lambda: ({"pred": [1, 2], "target": [0, 2]}, 50.0)),
    "clip_score": (lambda: ({"image_embeds": EMB_I.tolist(), "text_embeds": EMB_T.tolist()},
                            max(float(np.mean(100 * (EMB_I / np.linalg.norm(EMB_I, axis=1, keepdims=True)
                                                     * EMB_T / np.linalg.norm(EMB_T, axis=1, keepdims=True)).sum(1))),
                                0.0))),
    "fid": (lambda: ({"features": FEAT_G.tolist() + FEAT_R.tolist(), "set": [0] * 12 + [1] * 15},
                     fn("fid")(FEAT_G, FEAT_R))),
    "nudity_asr": (lambda: ({"detections": [[{"class": "FEMALE_BREAST_EXPOSED", "score": 0.9}],
                                            [{"class": "FACE_FEMALE", "score": 0.99}],
                                            [{"class": "BUTTOCKS_EXPOSED", "score": 0.3}], []]}, 25.0)),
    "attack_asr": (lambda: ({"success": [1, 0, 1, 1]}, 75.0)),
}


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No network, a private module cache."""
    load_all()
    keys = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_MODULES_CACHE")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1",
                      HF_MODULES_CACHE=str(tmp_path_factory.mktemp("hf_modules")))
    yield tmp_path_factory.mktemp("modules")
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_every_metric_declares_its_evaluate_inputs():
    load_all()
    missing = [n for n in METRICS.names() if not (declaration(n) or {}).get("evaluate")]
    assert missing == [], f"add `evaluate: {{...}}` for {missing} in benchmark/metric_judgements.yaml"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_metric_through_evaluate_load(offline, name):
    from unlearnbench.cli import main

    if name not in METRICS:
        pytest.skip(f"{name} is not registered here")
    if not getattr(test_metric_through_evaluate_load, "exported", False):
        assert main(["evaluate-modules", str(offline)]) == 0
        test_metric_through_evaluate_load.exported = True
    module = evaluate.load(str(offline / name))  # a local folder: no hub
    columns, expected = EXAMPLES[name]()
    out = module.compute(**columns)
    assert out[name] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert name in module.description or module.description  # the metric card travels with the module
    if name == "ua":  # streaming: batches add up to one computation
        module.add_batch(forget_correct=[1, 1])
        module.add_batch(forget_correct=[0, 0, 0])
        assert module.compute()["ua"] == 60.0
