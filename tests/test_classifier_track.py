"""Classifier track end to end on the digits world (test scale): tasks, world, protocol, methods."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from unlearnbench.cache import home
from unlearnbench.catalog import load_all
from unlearnbench.classifier import load_classifier
from unlearnbench.errors import UserError
from unlearnbench.registry import METHODS, TASKS, WORLDS
from unlearnbench.runner import get_protocol, get_task, score
from unlearnbench.unlearning import get_method, unlearn

METHOD_NAMES = ("retrain", "ft", "ga", "rl", "l1-sparse", "salun", "ssd", "scrub", "iu")
FAST = {"epochs": 1}  # iterative methods: one epoch keeps the suite fast


@pytest.fixture(scope="module", autouse=True)
def _home(tmp_path_factory):
    old = {k: os.environ.get(k) for k in ("UNLEARNBENCH_HOME", "UNLEARNBENCH_SCALE")}
    os.environ["UNLEARNBENCH_HOME"] = str(tmp_path_factory.mktemp("ub_home"))
    os.environ["UNLEARNBENCH_SCALE"] = "test"
    load_all()
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def ref():
    return WORLDS.get("digits").reference(get_task("digits/random-10"))


def test_tasks_and_splits():
    for name in ("digits/random-10", "digits/random-50", "digits/worst-10", "digits/class-3",
                 "cifar10/random-10", "cifar10/worst-10", "cifar10/class-9", "cifar100/class-99", "cifar100/random-50"):
        assert name in TASKS and get_task(name).modality == "classifier"
    assert "digits/class-10" not in TASKS and "cifar100/class-100" not in TASKS
    from unlearnbench.tasks.classifier_protocol import split_indices, task_data

    t = get_task("digits/random-10")
    data, idx = task_data(t), split_indices(t)
    assert (len(data.y_train), len(data.y_test)) == (1078, 719)  # world v2: 60/40 split
    assert len(idx["forget"]) == round(0.1 * 1078) and len(get_protocol(t).training_data(t)["forget"]["y"]) == 108
    assert not set(idx["forget"]) & set(idx["retain"]) and len(idx["forget"]) + len(idx["retain"]) == 1078
    assert len(split_indices(get_task("digits/random-50"))["forget"]) == round(0.5 * 1078)
    c = get_task("digits/class-3")
    ci = split_indices(c)
    assert (data.y_train[ci["forget"]] == 3).all() and (data.y_train[ci["retain"]] != 3).all()
    assert (data.y_test[ci["test"]] != 3).all()  # class-wise TA on the remaining classes


def test_digits_perturbation_deterministic_label_preserving():
    from unlearnbench.tasks.digits import load_data, perturb_images

    src = dict(get_task("digits/random-10").source)
    a, b = load_data(src), load_data(src)
    assert a.sha256() == b.sha256()  # fixed perturbation: same images every load
    clean = load_data({**src, "shift": 0, "noise": 0.0})
    assert clean.sha256() != a.sha256() and np.array_equal(clean.y_train, a.y_train)  # labels untouched
    for x in (a.x_train, a.x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert 0.05 < float(np.abs(a.x_test - clean.x_test).mean()) < 0.3  # train and test perturbed alike
    assert 0.05 < float(np.abs(a.x_train - clean.x_train).mean()) < 0.3
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 4, 4] = 1.0
    moved = perturb_images(np.repeat(x, 50, 0), 1, 0.0, 0)
    assert (moved.reshape(50, -1).sum(1) == 1.0).all()  # a shift of <= 1 px keeps a centred pixel
    assert len({int(np.argmax(m)) for m in moved}) > 1  # ... but moves it


def test_world_reference_and_independent_retrain(ref):
    t = get_task("digits/random-10")
    res = score("digits/random-10", "world:retain", reference=ref, progress=False).result
    assert res["metrics"]["avg_gap"]["value"] == 0.0
    tgt = score("digits/random-10", "world:target", reference=ref, progress=False).result["metrics"]
    assert tgt["ua"]["value"] <= res["metrics"]["ua"]["value"]  # the target saw the forget set
    assert tgt["ra"]["value"] > 90 and tgt["ta"]["value"] > 85
    world_retrain = load_classifier(WORLDS.get("digits").checkpoint(t, "retain")).describe()["weights_sha256"]
    # seed=0 (the recipe's) reproduces the reference Retrain model bit for bit ...
    model, _ = unlearn("digits/random-10", "retrain", overrides={"seed": 0}, seed=3, progress=False)
    out = score("digits/random-10", "m", reference=ref, model=model, progress=False).result["metrics"]
    assert out["avg_gap"]["value"] == 0.0 and out["rte"]["value"] > 0
    assert model.describe()["weights_sha256"] == world_retrain
    # ... while the method's own seed (1000 + run seed) gives an independent retrain: never the reference
    ind_full, _ = unlearn("digits/random-10", "retrain", seed=0, progress=False)
    assert ind_full.describe()["weights_sha256"] != world_retrain
    assert score("digits/random-10", "m", reference=ref, model=ind_full, progress=False).result[
        "metrics"]["avg_gap"]["value"] > 0.0


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_runs_through_unlearn_and_score(method, ref, tmp_path):
    assert f"classifier:{method}" in METHODS
    overrides = {} if method in ("ssd", "iu", "retrain") else dict(FAST)
    if method == "iu":
        overrides = {"fisher_samples": 50}
    model, record = unlearn("digits/random-10", method, overrides=overrides, seed=0, progress=False)
    res = score("digits/random-10", "x", reference=ref, model=model, progress=False, out_dir=tmp_path,
                method={"name": method, "config": record["config"]}).result
    assert set(res["metrics"]) >= {"ua", "ra", "ta", "mia_efficacy", "rte", "avg_gap"}
    assert res["metrics"]["rte"]["value"] == pytest.approx(model.meta["unlearn_seconds"] / 60)
    assert res["model"]["weights_sha256"] != score("digits/random-10", "world:target", progress=False).result[
        "model"]["weights_sha256"]
    (tmp_path / "ck").mkdir()
    model.save(tmp_path / "ck")  # unlearned checkpoints reload through the loader
    again = score("digits/random-10", str(tmp_path / "ck"), reference=ref, progress=False).result
    assert again["metrics"]["ua"] == res["metrics"]["ua"] and again["metrics"]["rte"] == res["metrics"]["rte"]


STOCHASTIC = ("retrain", "ft", "ga", "rl", "l1-sparse", "salun", "scrub")


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_run_seed_reaches_every_random_source(method):
    """Same seed, same weights and numbers; another seed, other weights (SSD and IU: no random source)."""
    over = {"epochs": 2} if method != "iu" else {"fisher_samples": 50}
    if method == "ssd":
        over = {}

    def run(seed):
        m, rec = unlearn("digits/random-10", method, overrides=over, seed=seed, progress=False)
        r = score("digits/random-10", "x", model=m, progress=False).result
        return {k: v["value"] for k, v in r["metrics"].items() if k != "rte"}, m.describe()["weights_sha256"]

    a, b, c = run(5), run(5), run(6)
    assert a == b
    deterministic = get_method(method, "classifier").deterministic
    assert deterministic == (method not in STOCHASTIC)
    if deterministic:
        assert c == a
    else:
        assert c[1] != a[1]


def test_small_forget_set_is_reordered_per_seed():
    from unlearnbench.classifier_training import shuffle_order

    orders = {tuple(shuffle_order(20, s, 0, 0).tolist()) for s in range(5)}
    assert len(orders) == 5 and all(sorted(o) == list(range(20)) for o in orders)  # 20 < one batch of 64
    assert shuffle_order(20, 3, 1, 0).tolist() != shuffle_order(20, 3, 0, 0).tolist()  # and per epoch


def test_ga_forgets_and_overwhelms():
    base = score("digits/random-10", "world:target", progress=False).result["metrics"]
    m, _ = unlearn("digits/random-10", "ga", overrides={"lr": 0.03, "epochs": 5}, seed=0, progress=False)
    after = score("digits/random-10", "x", model=m, progress=False).result["metrics"]
    assert after["ua"]["value"] > base["ua"]["value"] + 2
    # a diverged model (NaN logits at a huge lr) is scored, not crashed on
    m, _ = unlearn("digits/random-10", "ga", overrides={"lr": 5.0, "epochs": 5}, seed=0, progress=False)
    assert score("digits/random-10", "x", model=m, progress=False).result["metrics"]["ra"]["value"] < 50


def test_salun_frozen_weights_bit_identical_with_momentum_and_weight_decay():
    from unlearnbench.classifier_training import Phase, cross_entropy, train_loop
    from unlearnbench.baselines.salun_classifier import saliency_mask
    from unlearnbench.classifier import Classifier

    torch.manual_seed(0)
    model = Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    mask = saliency_mask(model.module, x[:16], y[:16], keep=0.5, batch_size=8)
    n_total = sum(m.numel() for m in mask.values())
    assert sum(int(m.sum()) for m in mask.values()) == round(0.5 * n_total)
    before = {n: p.detach().clone() for n, p in model.module.named_parameters()}
    train_loop(model.module, [Phase(x, y, cross_entropy, 16)], epochs=3, lr=0.1, momentum=0.9, weight_decay=5e-2,
               seed=0, mask=mask)
    moved = 0
    for n, p in model.module.named_parameters():
        frozen = ~mask[n]
        assert torch.equal(p.detach()[frozen], before[n][frozen]), n  # bit-identical outside the mask
        moved += int((p.detach()[mask[n]] != before[n][mask[n]]).sum())
    assert moved > 0.9 * round(0.5 * n_total)
    # without restoring, weight decay + momentum would move frozen weights: the test can fail
    torch.manual_seed(0)
    plain = Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})
    opt = torch.optim.SGD(plain.module.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-2)
    for _ in range(2):
        opt.zero_grad()
        cross_entropy(plain.module, x, y).backward()
        for n, p in plain.module.named_parameters():
            p.grad.mul_(mask[n])
        opt.step()
    assert any(not torch.equal(p.detach()[~mask[n]], before[n][~mask[n]]) for n, p in plain.module.named_parameters())


def _exact_capped_simplex_projection(v, m):
    """Independent check: the projection onto {0 <= w <= 1, sum w = m} is clip(v - tau, 0, 1) with
    sum = m; the sum is piecewise linear in tau, so solve it exactly between its breakpoints."""
    knots = np.sort(np.concatenate([v, v - 1.0]))
    f = lambda tau: np.clip(v - tau, 0, 1).sum() - m  # noqa: E731 - non-increasing in tau
    for lo, hi in zip(knots[:-1], knots[1:]):
        if f(lo) >= 0 >= f(hi):
            tau = lo if f(lo) == f(hi) else lo + (hi - lo) * f(lo) / (f(lo) - f(hi))
            return np.clip(v - tau, 0, 1)
    raise AssertionError("no breakpoint bracket")


def test_worst_case_projection_and_sign_sgd_lower_level():
    from unlearnbench.classifier import Classifier
    from unlearnbench.tasks.worst_case import DEFAULTS, _sign_sgd_unlearn, project_capped_simplex

    rng = np.random.default_rng(0)
    for _ in range(20):
        v, m = rng.normal(0.3, 1.0, 50), float(rng.integers(1, 49))
        w = project_capped_simplex(v, m)
        assert w.sum() == pytest.approx(m, abs=1e-6) and w.min() >= 0 and w.max() <= 1
        assert np.allclose(w, _exact_capped_simplex_projection(v, m), atol=1e-6)
    # the lower level is sign-SGD (reference SignSGD.sign_step): every weight moves by a multiple of theta_lr
    torch.manual_seed(0)
    model = Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    cfg = {**DEFAULTS, "unlearn_steps": 3, "theta_lr": 0.01, "batch_size": 64}
    _sign_sgd_unlearn(model.module, x, y, np.zeros(40), cfg, epoch=0)
    for k, v in model.module.state_dict().items():
        steps = (v - before[k]) / 0.01
        assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.abs().max() <= 3 + 1e-3, k
        assert steps.abs().max() >= 1 - 1e-3, k  # and it did move
    # weights (1 - w_i) = 0 everywhere: no gradient, no move
    model2 = Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})
    snap = {k: v.clone() for k, v in model2.module.state_dict().items()}
    _sign_sgd_unlearn(model2.module, x, y, np.ones(40), cfg, epoch=0)
    assert all(torch.equal(v, snap[k]) for k, v in model2.module.state_dict().items())


def test_worst_case_selection_follows_the_reference_algorithm(tmp_path):
    from unlearnbench.classifier import Classifier
    from unlearnbench.tasks.classifier_protocol import ClassifierData
    from unlearnbench.tasks.worst_case import select_worst_case, worst_case_forget_set

    torch.manual_seed(0)
    model = Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})
    x, y = torch.rand(120, 1, 8, 8), torch.randint(0, 10, (120,))
    # no upper iteration: the initial random set of the selection seed
    init, trace = select_worst_case(model.module, x, y, 12, {"select_epochs": 0, "seed": 4})
    assert np.array_equal(init, np.sort(np.random.default_rng(4).permutation(120)[:12])) and trace["kept_from_initial"] == 12
    # one iteration with a huge upper step: w ends on the m lowest per-sample losses after the lower level,
    # computed here independently (fresh copy, same sign-SGD steps, eval-mode losses)
    cfg = {"select_epochs": 1, "unlearn_steps": 2, "theta_lr": 0.01, "w_lr": 1e6, "batch_size": 32, "seed": 4}
    chosen, _ = select_worst_case(model.module, x, y, 12, cfg)
    import copy

    from unlearnbench.classifier_training import shuffle_order

    twin = copy.deepcopy(model.module).train()
    keep = torch.ones(120)
    keep[torch.as_tensor(init)] = 0.0
    params = list(twin.parameters())
    for step in range(2):
        order = shuffle_order(120, 4, step, 0)
        for i in range(0, 120, 32):
            idx = order[i:i + 32]
            loss = (keep[idx] * torch.nn.functional.cross_entropy(twin(x[idx]), y[idx], reduction="none")).sum()
            with torch.no_grad():
                for p, g in zip(params, torch.autograd.grad(loss, params)):
                    p -= 0.01 * g.sign()
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(twin.eval()(x), y, reduction="none").numpy()
    assert np.array_equal(chosen, np.sort(np.argsort(losses, kind="stable")[:12]))
    again, _ = select_worst_case(model.module, x, y, 12, cfg)
    assert np.array_equal(chosen, again)  # deterministic, and the model is left as it was
    with pytest.raises(UserError):
        select_worst_case(model.module, x, y, 0, cfg)

    data = ClassifierData(x.numpy(), y.numpy(), x[:10].numpy(), y[:10].numpy(), 10, "toy")
    arch = {"name": "digits-cnn", "kwargs": {"channels": [4, 8], "hidden": 16}}
    recipe = {"epochs": 1, "lr": 0.05, "batch_size": 32}
    spec = {"fraction": 0.1, "select_epochs": 2, "unlearn_steps": 1}
    first = worst_case_forget_set(data, spec, architecture=arch, recipe=recipe)
    cached = list((home() / "worst_case").glob("*.json"))
    assert len(cached) == 1 and "trace" in json.loads(cached[0].read_text())
    assert np.array_equal(first, worst_case_forget_set(data, spec, architecture=arch, recipe=recipe))
    with pytest.raises(UserError, match="unknown setting"):
        worst_case_forget_set(data, {"fraction": 0.1, "outer_steps": 3}, architecture=arch, recipe=recipe)


def test_user_errors():
    with pytest.raises(UserError):
        unlearn("digits/random-10", "salun", overrides={"no_such_field": "1"}, progress=False)
    with pytest.raises(UserError):
        get_task("digits/clas-3")
    with pytest.raises(UserError):
        WORLDS.get("digits").checkpoint(get_task("digits/random-10"), "oracle")
    with pytest.raises(UserError):
        score("digits/random-10", "/nonexistent/checkpoint", progress=False)
