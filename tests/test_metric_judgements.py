"""How metrics are judged: one declaration per metric (metric_judgements.yaml), resolved per task."""

from __future__ import annotations

import pytest

from unlearnbench.catalog import load_all
from unlearnbench.metric import declare_metric, judgement
from unlearnbench.registry import METRICS


def test_every_registered_metric_is_declared():
    load_all()
    undeclared = [n for n in METRICS.names() if judgement(n).source != "declared"]
    assert undeclared == [], f"declare {undeclared} in benchmark/metric_judgements.yaml (one line each)"


def test_salun_metrics_are_judged_by_their_gap_to_retrain_but_ua_is_not_for_diffusion():
    load_all()
    for m in ("ua", "ra", "ta", "mia_efficacy"):
        j = judgement(m, modality="classifier", task="digits/random-10")
        assert j.better == "reference" and j.is_distance and (j.low, j.high) == (0, 100)
        assert j.distance(5.24, 3.0) == pytest.approx(2.24) and j.bounds() == (0.0, 100.0)
    assert judgement("ua", modality="diffusion").better == "higher"


def test_privleak_is_judged_by_its_distance_to_zero():
    j = judgement("privleak", modality="llm")
    assert (j.better, j.target, j.low, j.high) == ("target", 0.0, -100.0, None)
    assert j.distance(-57.6) == 57.6 and j.distance(3.0) == 3.0 and not j.higher_is_better
    assert judgement("privleak_gap").better == "lower"


def test_split_variants_take_the_protocols_direction():
    assert judgement("forget/probability", stored_higher_is_better=False).better == "lower"
    assert judgement("retain/probability", stored_higher_is_better=True).better == "higher"
    assert (judgement("forget/probability").low, judgement("forget/probability").high) == (0, 1)
    assert judgement("forget/knowmem", stored_higher_is_better=False).better == "lower"


def test_undeclared_metrics_fall_back_to_what_was_stored():
    j = judgement("never_declared_metric", stored_higher_is_better=False)
    assert (j.better, j.source) == ("lower", "stored")
    assert judgement("never_declared_metric").source == "default"


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="`better` must be one of"):
        declare_metric("x_metric", better="bigger")
    with pytest.raises(ValueError, match="`target` goes with"):
        declare_metric("x_metric", better="lower", target=0.0)
    with pytest.raises(ValueError, match="better_for values"):
        declare_metric("x_metric", better="lower", better_for={"llm": "target"})
    declare_metric("x_metric", better="higher", range=(0, 1), better_for={"classifier": "reference"})
    assert judgement("x_metric").better == "higher"
    assert judgement("x_metric", modality="classifier").better == "reference"
    declare_metric("x_metric", better="lower", better_for={"digits/*": "reference"})
    assert judgement("x_metric", task="digits/worst-10").better == "reference"
    assert judgement("x_metric", task="cifar10/worst-10").better == "lower"
