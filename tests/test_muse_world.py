"""The mini-MUSE world: generated data in MUSE-News's schema (fast) and the built world end to end (slow)."""

from __future__ import annotations

import json

import pytest

from unlearnbench.errors import UserError


@pytest.fixture(scope="module")
def splits():
    from unlearnbench.tasks.mini_muse import RECIPES, build_splits

    return build_splits(RECIPES["test"])


def test_schema_and_sizes(splits):
    from unlearnbench.tasks.mini_muse import RECIPES

    r = RECIPES["test"]
    nf, q = r["n_forget"], r["qa_docs"]
    docs = lambda n: n * (1 + 2 * q)  # noqa: E731  each article, then its 2 QA pairs q times as documents
    assert q >= 1 and len(splits["raw/forget"]) == docs(nf) and len(splits["raw/retain2"]) == docs(r["n_retain2"] + 3 * nf)
    assert len(splits["knowmem/retain_qa"]) == 2 * r["n_retain2"]
    assert len(splits["raw/holdout"]) == docs(r["n_holdout"]) and len(splits["raw/retain1"]) == docs(r["n_retain1"])
    assert set(splits["verbmem/forget"][0]) == {"prompt", "gt"}
    assert set(splits["knowmem/forget_qa"][0]) == {"question", "answer"}
    # PrivLeak compares articles (forget vs holdout); the corpora add the QA documents
    assert splits["privleak/forget"] == splits["raw/forget"][:nf] and splits["privleak/holdout"] == splits["raw/holdout"][:r["n_holdout"]]
    qa_docs = [x["text"] for x in splits["raw/forget"][nf:]]
    assert qa_docs == [f"Question: {x['question']}\nAnswer: {x['answer']}" for _ in range(q) for x in splits["knowmem/forget_qa"]]
    assert [len(splits[f"scal/forget_{k}"]) for k in range(1, 5)] == [docs(nf), docs(2 * nf), docs(3 * nf), docs(4 * nf)]
    assert all(len(splits[f"sust/forget_{k}"]) == docs(nf) for k in range(1, 5))


def test_corpora_are_disjoint_and_scal_sust_nest(splits):
    texts = {k: {r["text"] for r in splits[f"raw/{k}"]} for k in ("forget", "retain1", "retain2", "holdout")}
    names = list(texts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not texts[a] & texts[b], (a, b)
    scal = [{r["text"] for r in splits[f"scal/forget_{k}"]} for k in range(1, 5)]
    assert all(scal[k] < scal[k + 1] for k in range(3)) and scal[0] == texts["forget"]
    sust = [{r["text"] for r in splits[f"sust/forget_{k}"]} for k in range(1, 5)]
    assert sust[0] == texts["forget"] and all(s <= texts["retain2"] for s in sust[1:])
    assert len(set().union(*sust)) == sum(len(s) for s in sust)  # requests are disjoint


def test_knowledge_and_verbatim_splits_come_from_the_right_corpus(splits):
    forget = " ".join(r["text"] for r in splits["raw/forget"])
    retain1 = " ".join(r["text"] for r in splits["raw/retain1"])
    for qa in splits["knowmem/forget_qa"]:
        assert f"Question: {qa['question']}\nAnswer: {qa['answer']}" in forget
    retain2 = " ".join(r["text"] for r in splits["raw/retain2"])
    requests = " ".join(r["text"] for k in range(1, 5) for kind in ("scal", "sust") for r in splits[f"{kind}/forget_{k}"])
    # as MUSE-News: the retain questions ask retain2 (evaluation), never retain1 (the methods' retain
    # term trains on it) nor an article a later scalability / sustainability request forgets
    for qa in splits["knowmem/retain_qa"]:
        line = f"Question: {qa['question']}\nAnswer: {qa['answer']}"
        assert line in retain2 and line not in retain1 and line not in requests
    for v, raw in zip(splits["verbmem/forget"], splits["raw/forget"]):
        assert raw["text"].startswith(v["prompt"] + v["gt"])


def test_generator_is_deterministic_and_seeded():
    from unlearnbench.tasks.mini_muse import RECIPES, build_splits

    r = RECIPES["test"]
    assert json.dumps(build_splits(r)) == json.dumps(build_splits(r))
    assert build_splits({**r, "seed": 1})["raw/forget"] != build_splits(r)["raw/forget"]


def test_tasks_registered():
    from unlearnbench.runner import get_task

    t = get_task("mini-muse/news")
    assert t.protocol == "muse" and t.world == "mini-muse" and t.source["kind"] == "world"
    assert "knowmem_forget_icl" not in t.splits
    assert get_task("mini-muse/news-sust-2").splits["forget_train"] == "sust/forget_2"
    assert get_task("mini-muse/news-scal-4").splits["forget_train"] == "scal/forget_4"


def test_unknown_role():
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    with pytest.raises(UserError, match="no model role"):
        WORLDS.get("mini-muse").checkpoint(get_task("mini-muse/news"), "nope")


@pytest.mark.slow
def test_world_builds_scores_and_trains_on_it():
    """Test-scale world: data files on disk, retrained reference, target scored against it."""
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_protocol, get_task, score

    task = get_task("mini-muse/news")
    world = WORLDS.get("mini-muse")
    ref = world.reference(task)
    payload = json.loads(ref.read_text())["payload"]
    assert set(payload["auc"]) == {"mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus"}
    res = score(task.name, "world:target", reference=ref, progress=False).result
    assert {"forget/verbmem", "forget/knowmem", "retain/knowmem", "privleak", "mia_reference"} <= set(res["metrics"])
    assert res["references"][0]["path"] == str(ref)
    data = get_protocol(task).training_data(task)
    assert len(data["forget"]) == len(world.texts("raw/forget")) and data["forget"][0]["question"] == ""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ga", "npo"])
def test_llm_baselines_run_unchanged_on_mini_muse(method):
    """The shared LLM loop takes the MUSE protocol's raw-text training data as it is."""
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import unlearn

    task = get_task("mini-muse/news-sust-1")
    model, record = unlearn(task.name, method, overrides={"max_steps": 2, "batch_size": 4}, progress=False)
    assert record["forget_set_sha256"] and record["task"]["name"] == task.name
    res = score(task.name, "unlearned", model=model, reference=WORLDS.get("mini-muse").reference(task),
                progress=False).result
    assert "privleak" in res["metrics"]


def test_models_built_side_by_side_equal_models_built_one_by_one(tmp_path, monkeypatch):
    """prepare() trains the roles in spawned single-threaded processes; the bytes must match a
    one-process build."""
    from unlearnbench.results import weights_sha256
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.mini_muse import WORLD

    task = get_task("mini-muse/news")
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path / "side"))
    monkeypatch.setenv("UNLEARNBENCH_BUILD_WORKERS", "2")
    side = WORLD.prepare(task, ("retrain", "retain2"))
    assert side["retrain"].name == "retain" and side["retain2"].name == "retain2"
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path / "one"))
    monkeypatch.setenv("UNLEARNBENCH_BUILD_WORKERS", "1")
    one = WORLD.prepare(task, ("retrain", "retain2"))
    for role in ("retrain", "retain2"):
        assert one[role] != side[role] and weights_sha256(one[role]) == weights_sha256(side[role])
    assert weights_sha256(one["retrain"]) != weights_sha256(one["retain2"])  # another seed


def _default_world(monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task

    task = get_task("mini-muse/news")
    world = WORLDS.get("mini-muse")
    world.prepare(task, ("target", "retain", "retain2"))
    return world


def _muse_metrics(task_name, checkpoint, model=None):
    """VerbMem, forget KnowMem, retain KnowMem, PrivLeak of a model on a default-world task."""
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, score

    ref = WORLDS.get("mini-muse").reference(get_task(task_name))
    m = score(task_name, checkpoint, model=model, reference=ref, progress=False).result["metrics"]
    return [m[k]["value"] for k in ("forget/verbmem", "forget/knowmem", "retain/knowmem", "privleak")]


@pytest.mark.slow
def test_default_world_knowledge_and_privleak(monkeypatch):
    """Issue 16 on the default world (v3; ~3.5 min cold on 2 cores): the target knows the forget
    facts, a second retrained model does not, and both know the retain facts equally well
    (MUSE's retain set: questions on ``raw/retain2``, which the methods' retain term never
    trains on); PrivLeak separates the target (strongly negative) from a retrained model (~0).
    Measured (seed 0), VerbMem / forget KnowMem / retain KnowMem / PrivLeak: target 0.504 / 0.338
    / 0.337 / -100, retain2 0.425 / 0 / 0.362 / +7.1 (world v2: retain KnowMem 0.197 vs 0.305 on
    32 questions; v3 asks 96)."""
    _default_world(monkeypatch)
    target, retain2 = _muse_metrics("mini-muse/news", "world:target"), _muse_metrics("mini-muse/news", "world:retain2")
    assert target[1] > retain2[1] + 0.2 and retain2[1] < 0.1, (target, retain2)  # forget facts: known / not guessable
    assert abs(retain2[2] - target[2]) < 0.05 and target[2] > 0.25, (target, retain2)  # retain facts: the same
    assert target[3] < -50 and abs(retain2[3]) < 15, (target, retain2)


@pytest.mark.slow
def test_default_world_method_defaults_unlearn(monkeypatch):
    """Every MUSE-table method at the task's defaults (seed 0, tuned by the rule in
    ``tasks/mini_muse.py``) forgets the forget facts and its verbatim text down to a retrained
    model's level; GA erases the retain facts too, GradDiff / NPO / SimNPO keep part of them, and
    RMU moves PrivLeak most of the way to 0. Measured (VerbMem / forget KnowMem / retain KnowMem /
    PrivLeak): GA 0 / 0 / 0 / -4.3, GradDiff 0.388 / 0.095 / 0.274 / -86, NPO 0.353 / 0.043 /
    0.250 / -67, SimNPO 0.385 / 0.016 / 0.128 / -71, RMU 0.195 / 0 / 0.090 / +15.7."""
    from unlearnbench.unlearning import unlearn

    _default_world(monkeypatch)
    target, retain2 = _muse_metrics("mini-muse/news", "world:target"), _muse_metrics("mini-muse/news", "world:retain2")
    got = {}
    for method in ("ga", "graddiff", "npo", "simnpo", "rmu"):
        model, _ = unlearn("mini-muse/news", method, seed=0, progress=False)
        got[method] = m = _muse_metrics("mini-muse/news", method, model)
        assert m[1] < target[1] / 3 and m[0] < retain2[0] + 0.05, (method, m, target, retain2)
    assert got["ga"][2] < 0.05
    assert all(got[k][2] > 0.1 for k in ("graddiff", "npo", "simnpo")), got
    assert abs(got["rmu"][3]) < abs(target[3]) / 2, got


@pytest.mark.slow
def test_default_world_utility_falls_as_the_forget_set_grows(monkeypatch):
    """MUSE's scalability finding (Shi et al., 2024, Fig. 5): NPO and SimNPO keep less utility as
    the forget set grows. Measured retain KnowMem (seed 0), forget sets 1x / 2x / 3x / 4x: NPO 0.250 /
    0.005 / 0.010 / 0.001, SimNPO 0.128 / 0.014 / 0.004 / 0 (target 0.337)."""
    from unlearnbench.unlearning import unlearn

    _default_world(monkeypatch)
    for method in ("npo", "simnpo"):
        keep = []
        for k in (1, 4):
            task = f"mini-muse/news-scal-{k}"
            model, _ = unlearn(task, method, seed=0, progress=False)
            keep.append(_muse_metrics(task, method, model)[2])
        assert keep[0] > 0.1 and keep[1] < keep[0] - 0.1, (method, keep)
