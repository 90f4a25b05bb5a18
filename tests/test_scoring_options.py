"""``score`` options: --data, --profile, --system-prompt, --max-new-tokens, --limit.

Bad input is one line and exit 2 *before any model load*: every case here passes an empty
folder as the checkpoint, which fails to load ("not a model folder"), so an error about
anything else proves the order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_tofu_fixture
from unlearnbench.cli import main
from unlearnbench.leaderboard.verify import verify_file
from unlearnbench.profiles import apply_options
from unlearnbench.results import load_result, load_samples
from unlearnbench.runner import get_task

NO_MODEL = str(Path(__file__).resolve().parent / "perf")  # exists, but holds no model
TOFU_CONFIGS = ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed",
                "holdout10", "forget10", "retain90")


def hub_layout(folder: Path, configs=TOFU_CONFIGS, split: str = "train") -> Path:
    """A TOFU copy in the hub layout: README.md declaring one config per JSON-lines file."""
    write_tofu_fixture(folder)
    lines = ["---", "configs:"]
    for c in configs:
        lines += [f"- config_name: {c}", "  data_files:", f"  - split: {split}", f"    path: {c}.json"]
    (folder / "README.md").write_text("\n".join(lines + ["---", "", "test copy"]) + "\n")
    return folder


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("unlearnbench: error:"), err
    assert "not a model folder" not in err and "checkpoint not found" not in err  # failed before the model
    return err


@pytest.mark.parametrize("argv, expect", [
    (["--data", "/nonexistent/tofu"], "does not exist"),
    (["--profile", "open-unlearnin"], "did you mean 'open-unlearning'"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    (["--profile", "tofu", "--system-prompt", "Be brief."], "needs a chat template"),
])
def test_bad_options_fail_before_the_model(capsys, argv, expect):
    assert expect in _err(capsys, ["score", "tofu/forget10", NO_MODEL, *argv])


@pytest.mark.parametrize("task, argv, expect", [
    ("digits/random-10", ["--profile", "open-unlearning"], "is a classifier task"),
    ("muse/news", ["--profile", "open-unlearning"], "applies to tofu tasks"),
    ("wmdp/bio", ["--system-prompt", "x"], "scored on raw prompts"),
    ("wmdp/bio", ["--max-new-tokens", "8"], "does not generate text"),
    ("digits/random-10", ["--limit", "3"], "applies to LLM tasks"),
    ("unlearncanvas/style/Monet", ["--data", "."], "reads no dataset"),
    ("mini-tofu/forget10", ["--data", "."], "generates its own data"),
])
def test_options_for_the_wrong_task_fail_before_the_model(capsys, task, argv, expect):
    assert expect in _err(capsys, ["score", task, NO_MODEL, *argv])


def test_data_folder_problems_fail_before_the_model(tmp_path, capsys):
    missing = hub_layout(tmp_path / "missing", configs=TOFU_CONFIGS[1:])
    assert "has no config 'forget10_perturbed'" in _err(capsys, ["score", "tofu/forget10", NO_MODEL, "--data", str(missing)])
    wrong_split = hub_layout(tmp_path / "split", split="test")
    err = _err(capsys, ["score", "tofu/forget10", NO_MODEL, "--data", str(wrong_split)])
    assert "split train" in err and str(wrong_split) in err
    cols = hub_layout(tmp_path / "cols")
    rows = [json.loads(x) for x in (cols / "retain_perturbed.json").read_text().splitlines()]
    (cols / "retain_perturbed.json").write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "paraphrased_answer"})
                                                         for r in rows) + "\n")
    assert "lacks the field 'paraphrased_answer'" in _err(capsys, ["score", "tofu/forget10", NO_MODEL, "--data", str(cols)])
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "expected a README.md declaring configs" in _err(capsys, ["score", "tofu/forget10", NO_MODEL, "--data", str(plain)])


def test_options_change_the_spec_and_are_recorded(tmp_path, tiny_lm_dir, capsys):
    """A real task scored on a local hub-layout copy, with options: settings in the task
    block, a different spec hash, and `leaderboard verify` recomputes every number."""
    data = hub_layout(tmp_path / "tofu")
    base = get_task("tofu/forget10")
    opts = apply_options(base, max_new_tokens=4, limit=3, system_prompt=None)
    assert opts.spec_hash() != base.spec_hash() and opts.settings["limit"] == 3
    assert apply_options(base) is base  # nothing asked, nothing changed
    out = tmp_path / "out"
    same = ["--data", str(data), "--max-new-tokens", "4", "--limit", "3", "--template", "qa", "--quiet"]
    ref = tmp_path / "ref.json"
    assert main(["reference", "build", "tofu/forget10", str(tiny_lm_dir), "-o", str(ref), *same]) == 0
    rc = main(["score", "tofu/forget10", str(tiny_lm_dir), "--reference", str(ref), "-o", str(out), *same])
    assert rc == 0, capsys.readouterr().err
    path = next(out.glob("*.result.json"))
    res = load_result(path)
    t = res["task"]
    assert t["limit"] == 3 and t["profile"] == "default" and t["settings"]["max_new_tokens"] == 4
    assert t["spec_sha256"] == opts.spec_hash() and t["data_dir"] == {"task": str(data.resolve())}
    rows = load_samples(path, res)
    assert {r["split"] for r in rows} == {"forget", "retain", "real_authors", "world_facts", "holdout"}
    assert all(sum(r["split"] == s for r in rows) == 3 for s in ("forget", "retain", "holdout"))
    rep = verify_file(path)  # reads the data from the recorded local copy
    assert rep.ok, rep.lines()
    other = hub_layout(tmp_path / "other")
    f = other / "forget10_perturbed.json"
    f.write_text(f.read_text().replace("writes", "wrote", 1))  # one answer edited
    assert any("scored on other data" in p for p in verify_file(path, data=[str(other)]).problems)


def test_data_reaches_classifier_and_diffusion_loaders(tmp_path, capsys):
    """CIFAR and I2P read --data through their local-copy override, checked before the model."""
    empty = tmp_path / "cifar"
    empty.mkdir()
    assert "holds neither" in _err(capsys, ["score", "cifar10/random-10", NO_MODEL, "--data", str(empty)])
    two = tmp_path / "i2p"
    two.mkdir()
    (two / "a.csv").write_text("prompt\nx\n")
    (two / "b.csv").write_text("prompt\nx\n")
    assert "exactly one I2P .csv" in _err(capsys, ["score", "i2p/nudity", NO_MODEL, "--data", str(two)])
    (two / "b.csv").unlink()
    assert "is not an I2P CSV" in _err(capsys, ["score", "i2p/nudity", NO_MODEL, "--data", str(two)])


def test_reference_built_with_other_settings_is_refused(tofu_fixture_task, tiny_lm_dir, tmp_path, capsys):
    ref = tmp_path / "ref.json"
    assert main(["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ref), "--quiet",
                 "--max-new-tokens", "3", "--limit", "2"]) == 0
    capsys.readouterr()
    err = _err(capsys, ["score", tofu_fixture_task.name, NO_MODEL, "--reference", str(ref), "--limit", "2"])
    assert "built with other scoring settings" in err
    out = tmp_path / "out"
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(ref), "--quiet",
                 "--max-new-tokens", "3", "--limit", "2", "-o", str(out)]) == 0
    res = load_result(next(out.glob("*.result.json")))
    assert "forget_quality" in res["metrics"] and "privleak" in res["metrics"]
    assert res["metrics"]["privleak"]["reference"] == "retain model"


def test_tofu_profile_counts_prompt_tokens_and_budgets_generation(tofu_fixture_task, tiny_lm_dir, tmp_path):
    """locuslab/tofu's layout: the first len(tokenize(prompt)) tokens masked, one EOS label,
    generation within a 200-token total budget."""
    from unlearnbench.causal_lm import CausalLM
    from unlearnbench.lm_encoding import Encoding

    lm = CausalLM.load(str(tiny_lm_dir))
    lm.use_settings(apply_options(tofu_fixture_task, profile="tofu").settings)
    assert lm.encoding == Encoding(layout="prompt_count") and lm.template.name == "qa"
    prompt = lm.render("What genre does Ava Lund write?")
    ids, labels = lm._encode(prompt, "Ava Lund writes poetry.")
    n_prompt = len(lm.tokenizer(prompt)["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == lm.tokenizer.eos_token_id and labels[-1] == ids[-1]
    from unlearnbench.tasks.tofu_protocol import generation_args

    budget = generation_args(apply_options(tofu_fixture_task, profile="tofu"), lm, [prompt, prompt + " more words"])
    assert budget["max_new_tokens"] == [200 - n_prompt, 200 - len(lm.tokenizer(prompt + " more words")["input_ids"])]
    out, ref = tmp_path / "out", tmp_path / "ref.json"
    same = ["--profile", "tofu", "--max-new-tokens", "3", "--limit", "2", "--quiet"]
    assert main(["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ref), *same]) == 0
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(ref), "-o", str(out), *same]) == 0
    res = load_result(next(out.glob("*.result.json")))
    assert "max_length" not in res["task"]["settings"] and res["model"]["encoding"]["layout"] == "prompt_count"
    assert res["task"]["profile"] == "tofu" and verify_file(next(out.glob("*.result.json"))).ok


def test_two_copies_in_folders_of_the_same_name_are_not_confused(tmp_path):
    """`datasets` names a local dataset's cache by folder and config: a second `data/` folder
    must not be served the first one's rows."""
    from unlearnbench.tasks.llm_data import load_split, local_copies

    a, b = hub_layout(tmp_path / "a" / "data"), hub_layout(tmp_path / "b" / "data")
    lines = (b / "forget10_perturbed.json").read_text().splitlines()[:2]
    (b / "forget10_perturbed.json").write_text("\n".join(lines) + "\n")
    task = get_task("tofu/forget10")
    for folder, n in ((a, 6), (b, 2), (a, 6)):
        with local_copies({"locuslab/TOFU": folder}):
            assert len(load_split(task, "forget")) == n


def test_reference_survives_new_method_defaults_but_not_new_scoring_settings(tmp_path):
    """A task's method defaults do not change how a model is scored: a reference built before
    they changed still loads (and one written with the earlier hash over every setting too),
    while any scoring setting that differs is refused."""
    from unlearnbench.errors import UserError
    from unlearnbench.reference import load_reference, settings_hash, write_reference
    from unlearnbench.runner import get_task

    task = get_task("mini-muse/news")
    ref = tmp_path / "ref.json"
    write_reference(ref, task, {"name": "m"}, {"auc": {}})
    retuned = task.replace(settings={**task.settings, "method_defaults": {"npo": {"alpha": 9.0}}})
    assert settings_hash(retuned) == settings_hash(task) != settings_hash(retuned, legacy=True)
    assert load_reference(ref, retuned)[0] == {"auc": {}}
    doc = json.loads(ref.read_text())
    doc["task"]["settings_sha256"] = settings_hash(task, legacy=True)  # a file written before the change
    ref.write_text(json.dumps(doc))
    assert load_reference(ref, task)[0] == {"auc": {}}
    longer = task.replace(settings={**task.settings, "knowmem_max_new_tokens": 32})
    with pytest.raises(UserError, match="other scoring settings"):
        load_reference(ref, longer)
