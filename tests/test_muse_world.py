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
    assert q >= 1 and len(splits["raw/forget"]) == docs(nf) and len(splits["raw/retain2"]) == docs(3 * nf)
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
    for qa in splits["knowmem/retain_qa"]:
        assert f"Question: {qa['question']}\nAnswer: {qa['answer']}" in retain1
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


@pytest.mark.slow
def test_default_world_privleak_and_rmu_defaults(monkeypatch):
    """Issue 4's check at the default world (~35 s cold on 2 cores): the target's PrivLeak is
    strongly negative, a second retrained model's is near 0, and RMU with the task's defaults
    moves PrivLeak and VerbMem towards the retrained model's. Measured (world v2): target PrivLeak
    -100 (VerbMem 0.457), retain2 -8.7 (0.309), RMU +5.8 (0.110)."""
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import unlearn

    task = get_task("mini-muse/news")
    world = WORLDS.get("mini-muse")
    world.prepare(task, ("target", "retain", "retain2"))
    ref = world.reference(task)

    def metrics(checkpoint, model=None):
        m = score(task.name, checkpoint, model=model, reference=ref, progress=False).result["metrics"]
        return m["privleak"]["value"], m["forget/verbmem"]["value"]

    target, retain2 = metrics("world:target"), metrics("world:retain2")
    assert target[0] < -30 and abs(retain2[0]) < 10, (target, retain2)
    model, _ = unlearn(task.name, "rmu", progress=False)
    rmu = metrics("rmu", model)
    assert target[0] + 20 < rmu[0] < 10 and rmu[1] < target[1] - 0.1, (target, rmu)


@pytest.mark.slow
def test_default_world_knowledge_and_simnpo_defaults(monkeypatch):
    """Issue 16: KnowMem carries a signal on the default world and SimNPO's task defaults unlearn.
    Measured (seed 0), VerbMem / forget KnowMem / retain KnowMem: target 0.457 / 0.214 / 0.197,
    retain2 0.309 / 0.037 / 0.305, SimNPO 0.148 / 0 / 0.154 (v1: target 0.10 / 0.14 KnowMem,
    a retrained model's retain KnowMem 0.03; SimNPO raised VerbMem above the target's)."""
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    from unlearnbench.runner import get_task, score
    from unlearnbench.unlearning import unlearn

    task = get_task("mini-muse/news")

    def metrics(checkpoint, model=None):
        m = score(task.name, checkpoint, model=model, progress=False).result["metrics"]
        return [m[k]["value"] for k in ("forget/verbmem", "forget/knowmem", "retain/knowmem")]

    target, retain2 = metrics("world:target"), metrics("world:retain2")
    assert target[1] > retain2[1] + 0.1, (target, retain2)     # the target knows the forget facts
    assert retain2[2] > target[2] - 0.05, (target, retain2)    # a retrained model keeps the retain facts
    assert retain2[1] < 0.1                                   # not guessable: bare-fact answers
    model, _ = unlearn(task.name, "simnpo", progress=False)
    simnpo = metrics("simnpo", model)
    assert simnpo[0] < target[0] - 0.1 and simnpo[1] < target[1] - 0.1 and simnpo[2] > 0.05, (target, simnpo)
