"""Classification-unlearning metrics of SalUn (Fan et al., ICLR 2024), as pure functions.

All inputs are arrays of per-sample values (0/1 correctness flags, true-class confidences,
seconds); all accuracies are percentages in [0, 100], as in SalUn's tables.

* ``ua``  Unlearning Accuracy = 100 - accuracy on the forget set (higher = more forgotten).
* ``ra``  Remaining Accuracy = accuracy on the retain (remaining training) set.
* ``ta``  Testing Accuracy = accuracy on the test set.
* ``mia_efficacy``  SalUn's MIA-Efficacy (the confidence-based SVC attack of
  ``Classification/evaluation/SVC_MIA.py``): share of forget samples an attacker calls
  non-members.
* ``rte``  Run-Time Efficiency: wall-clock of the unlearning run, in **minutes** (SalUn's unit).
* ``avg_gap``  Average Gap: mean absolute difference to the exact Retrain model over
  UA, RA, TA and MIA-Efficacy (SalUn, Table 3 "Avg. Gap").

Citation: Fan, Liu, Zhang, Wei, Wong, Liu. "SalUn: Empowering Machine Unlearning via
Gradient-based Weight Saliency in Both Image Classification and Generation." ICLR 2024.
Jia et al. "Model Sparsity Can Simplify Machine Unlearning." NeurIPS 2023 (the UA/RA/TA/MIA-Efficacy
protocol SalUn adopts).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import register_metric

#: the four metrics Avg. Gap averages over (SalUn, Table 3)
GAP_METRICS = ("ua", "ra", "ta", "mia_efficacy")


def _flags(correct: Sequence, what: str) -> np.ndarray:
    arr = np.asarray(correct, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise UserError(f"{what}: no samples")
    if not np.all((arr == 0) | (arr == 1)):
        raise UserError(f"{what}: correctness flags must be 0/1")
    return arr


def _accuracy(correct: Sequence, what: str) -> float:
    return float(100.0 * _flags(correct, what).mean())


@register_metric("ua", higher_is_better=True, modalities=("classifier", "diffusion"), consumes=("correct",),
                 description="Unlearning accuracy: 100 - forget-set accuracy (%)")
def ua(forget_correct: Sequence) -> float:
    """Unlearning Accuracy (UA), SalUn / Jia et al. 2023.

    Formula: ``UA = 100 * (1 - mean(correct_i))`` over the forget set (or, in the diffusion
    track, over images generated for the forgotten concept, judged by a classifier).

    Inputs: ``forget_correct`` — 0/1 flags, 1 where the model predicts the true label.
    Output: a percentage in [0, 100]; higher means more forgotten. It is *not* "higher is
    better" without limit in the random-forgetting setting: the goal there is Retrain's UA
    (SalUn reports the gap to Retrain for that reason).

    >>> ua([1, 1, 0, 0])
    50.0

    Values from the paper: Retrain on CIFAR-10 random 10 %: 5.24 (SalUn Table 3).
    """
    return 100.0 - _accuracy(forget_correct, "ua")


@register_metric("ra", higher_is_better=True, modalities=("classifier",), consumes=("correct",),
                 description="Remaining accuracy: retain-set accuracy (%)")
def ra(retain_correct: Sequence) -> float:
    """Remaining Accuracy (RA): ``100 * mean(correct_i)`` over the retain set.

    >>> ra([1, 1, 1, 0])
    75.0

    Values from the paper: Retrain, CIFAR-10 random 10 %: 100.00 (SalUn Table 3).
    """
    return _accuracy(retain_correct, "ra")


@register_metric("ta", higher_is_better=True, modalities=("classifier",), consumes=("correct",),
                 description="Testing accuracy: test-set accuracy (%)")
def ta(test_correct: Sequence) -> float:
    """Testing Accuracy (TA): ``100 * mean(correct_i)`` over the test set.

    In the class-wise setting the test set excludes the forgotten class (SalUn, Sec. 5).

    >>> ta([1, 0])
    50.0

    Values from the paper: Retrain, CIFAR-10 random 10 %: 94.26 (SalUn Table 3).
    """
    return _accuracy(test_correct, "ta")


def _mia_check(name: str, arr: Sequence) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise UserError(f"mia_efficacy: {name} must be a non-empty array of per-sample features")
    if not np.all(np.isfinite(a)):
        raise UserError(f"mia_efficacy: {name} has non-finite values")
    return a


def mia_predict_members(shadow_members: Sequence, shadow_nonmembers: Sequence, targets: Sequence) -> np.ndarray:
    """Fit SalUn's attacker and return its 0/1 membership predictions for ``targets``.

    The attacker is ``sklearn.svm.SVC(C=3, gamma="auto", kernel="rbf")`` trained on members
    (label 1) vs non-members (label 0), exactly as ``SVC_fit_predict`` in SalUn's
    ``Classification/evaluation/SVC_MIA.py``. SVC without probability estimates is deterministic.
    """
    from sklearn.svm import SVC

    mem, non, tgt = (_mia_check(n, a) for n, a in (("members", shadow_members), ("non-members", shadow_nonmembers),
                                                    ("targets", targets)))
    x = np.concatenate([mem, non])
    y = np.concatenate([np.ones(len(mem)), np.zeros(len(non))])
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x, y)
    return clf.predict(tgt).astype(np.int64)


@register_metric("mia_efficacy", higher_is_better=True, modalities=("classifier",),
                 consumes=("confidence",), description="MIA-Efficacy: % of forget samples an SVC attack calls non-members")
def mia_efficacy(retain_confidence: Sequence, test_confidence: Sequence, forget_confidence: Sequence) -> float:
    """MIA-Efficacy (SalUn, Sec. 5; Jia et al. 2023), SalUn's exact recipe.

    Procedure (``Classification/main_random.py`` + ``evaluation/SVC_MIA.py`` of
    ``OPTML-Group/Unlearn-Saliency``):

    1. feature = the softmax probability of the true class ("confidence", the entry SalUn
       reports; Song & Mittal 2021), one number per sample;
    2. shadow members = the first ``len(test)`` retain samples (in dataset order), shadow
       non-members = the whole test set;
    3. attacker = ``SVC(C=3, gamma="auto", kernel="rbf")`` on the raw feature (no scaling);
    4. efficacy = ``100 * mean(attacker(forget) == non-member)``.

    Higher means the forget set looks less like training data. As with UA, the target in
    random forgetting is Retrain's value, not 100.

    Inputs: confidences of retain, test and forget samples (1-d arrays, or 2-d feature arrays).
    Output: a percentage in [0, 100].

    Values from the paper: Retrain, CIFAR-10 random 10 %: 12.88 (SalUn Table 3).
    Limitations: the attacker sees one scalar, so it is weak; SVC training is quadratic in
    ``2 * len(test)`` samples (fine up to ~20 k).
    """
    test = _mia_check("test confidences", test_confidence)
    retain = _mia_check("retain confidences", retain_confidence)
    shadow_members = retain[: len(test)]
    pred = mia_predict_members(shadow_members, test, forget_confidence)
    return float(100.0 * np.mean(pred == 0))


@register_metric("rte", higher_is_better=False, modalities=("classifier",), consumes=("unlearn_seconds",),
                 description="Run-time efficiency: wall-clock of the unlearning run (minutes)")
def rte(unlearn_seconds: float) -> float:
    """Run-Time Efficiency (RTE): wall-clock of the unlearning run in **minutes** (SalUn's unit).

    For Retrain it is the time to train from scratch on the retain set. Measured with
    ``time.perf_counter`` around the method's ``unlearn`` call; excludes loading and scoring.
    Machine-dependent: compare only runs from the same machine.

    >>> rte(90.0)
    1.5
    """
    s = float(unlearn_seconds)
    if not np.isfinite(s) or s < 0:
        raise UserError(f"rte: unlearning time must be a non-negative number of seconds, got {unlearn_seconds!r}")
    return s / 60.0


@register_metric("avg_gap", higher_is_better=False, modalities=("classifier",), consumes=GAP_METRICS,
                 description="Average gap to Retrain over UA, RA, TA, MIA-Efficacy (points)")
def avg_gap(values: Mapping[str, float], retrain: Mapping[str, float], keys: Sequence[str] = GAP_METRICS) -> float:
    """Average Gap (SalUn, Table 3): ``mean_k |m_k - retrain_k|`` over k in UA, RA, TA, MIA-Efficacy.

    Inputs: two mappings metric -> value (percentages). Output: points (lower is better; 0 for
    the exact Retrain model by construction).

    >>> avg_gap({"ua": 5, "ra": 100, "ta": 94, "mia_efficacy": 12},
    ...         {"ua": 6, "ra": 99, "ta": 94, "mia_efficacy": 14})
    1.0

    Values from the paper: SalUn on CIFAR-10 random 10 %: 0.74 (Table 3).
    """
    missing = [k for k in keys if k not in values or k not in retrain]
    if missing:
        raise UserError(f"avg_gap: missing metric(s) {', '.join(missing)}")
    return float(np.mean([abs(float(values[k]) - float(retrain[k])) for k in keys]))
