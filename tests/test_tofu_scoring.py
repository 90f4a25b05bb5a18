"""End to end: score / reference build on a TOFU-schema fixture with a tiny model."""

import json

import numpy as np
import pytest

from unlearnbench.cli import main
from unlearnbench.runner import build_reference, get_protocol, score
from unlearnbench.results import load_result, load_samples, sha256_file


def test_score_writes_result_and_samples_and_is_deterministic(tofu_fixture_task, tiny_lm_dir, tmp_path):
    a = score(tofu_fixture_task.name, str(tiny_lm_dir), out_dir=tmp_path / "a", seed=3, progress=False)
    b = score(tofu_fixture_task.name, str(tiny_lm_dir), out_dir=tmp_path / "b", seed=3, progress=False)
    assert a.result["metrics"] == b.result["metrics"]
    ra, rb = load_result(a.path), load_result(b.path)
    assert load_samples(a.path, ra) == load_samples(b.path, rb)
    assert ra["task"]["version"] == 1 and ra["task"]["data_sha256"] and ra["model"]["weights_sha256"]
    assert ra["model"]["template"]["name"] == "qa" and ra["environment"]["dtype"] == "float32"
    assert {"forget/probability", "retain/rouge_l_recall", "world_facts/truth_ratio", "model_utility"} <= set(ra["metrics"])
    assert "forget_quality" not in ra["metrics"]  # no reference given: never guessed


def test_inference_is_shared_and_aggregation_is_pure(tofu_fixture_task, tiny_lm_dir):
    s = score(tofu_fixture_task.name, str(tiny_lm_dir), progress=False)
    rows = s.rows
    forget = [r for r in rows if r["split"] == "forget"]
    assert len(forget) == 6 and all(len(r["nll_perturbed"]) == 5 and "generation" in r for r in forget)
    again = get_protocol(tofu_fixture_task).aggregate(tofu_fixture_task, json.loads(json.dumps(rows)), None)
    assert again == s.result["metrics"]
    # the per-sample numbers agree with the metric definitions
    assert s.result["metrics"]["forget/probability"]["value"] == pytest.approx(
        np.mean([np.exp(-r["nll_answer"]) for r in forget]), rel=1e-12)


def test_reference_build_then_score_records_sha_and_forget_quality(tofu_fixture_task, tiny_lm_dir, tmp_path, capsys):
    ref = tmp_path / "ref.json"
    rc = main(["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ref), "--quiet"])
    assert rc == 0 and ref.exists()
    rc = main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(ref), "-o", str(tmp_path / "out"),
               "--quiet", "--seed", "1"])
    assert rc == 0
    assert "forget_quality" in capsys.readouterr().out
    res = load_result(next((tmp_path / "out").glob("*.result.json")))
    assert res["references"][0]["sha256"] == sha256_file(ref)
    # scored against itself, the KS test cannot tell the truth-ratio distributions apart
    assert res["metrics"]["forget_quality"]["value"] == pytest.approx(1.0)


def test_reference_for_another_task_is_refused(tofu_fixture_task, tiny_lm_dir, tmp_path, capsys):
    ref = tmp_path / "ref.json"
    build_reference(tofu_fixture_task.name, str(tiny_lm_dir), ref, progress=False)
    doc = json.loads(ref.read_text())
    doc["task"]["name"] = "tofu/forget01"
    ref.write_text(json.dumps(doc))
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(ref), "--quiet"]) == 2
    assert "was built for task" in capsys.readouterr().err


def test_hub_source_requests_tofu_configs(tofu_fixture_task, monkeypatch):
    """The real task asks `datasets` for locuslab/TOFU's configs (served here from the fixture)."""
    import datasets

    from unlearnbench.runner import get_task
    from unlearnbench.tasks.llm_data import _read_local, load_split
    from pathlib import Path

    folder = Path(tofu_fixture_task.source["path"])
    asked = []

    def fake_load(path, name, split):
        asked.append((path, name, split))
        return datasets.Dataset.from_list(_read_local(folder / f"{name.replace('forget01', 'forget10').replace('retain99', 'retain90')}.json"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    task = get_task("tofu/forget01")
    rows = load_split(task, "forget", ("question", "answer", "paraphrased_answer", "perturbed_answer"))
    assert asked == [("locuslab/TOFU", "forget01_perturbed", "train")] and len(rows) == 6
    data = get_protocol(task).training_data(task)
    assert ("locuslab/TOFU", "retain99", "train") in asked and data["forget"] and data["idk"]


def test_wrong_modality_checkpoint_is_a_user_error(tofu_fixture_task, tmp_path, capsys):
    ck = tmp_path / "unet"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30"}))
    assert main(["score", tofu_fixture_task.name, str(ck), "--quiet", "-o", str(tmp_path / "o")]) == 2
    assert "not a causal language model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_forget_side_knowledge_metrics_are_lower_is_better(tofu_fixture_task, tiny_lm_dir):
    m = score(tofu_fixture_task.name, str(tiny_lm_dir), progress=False).result["metrics"]
    assert m["forget/probability"]["higher_is_better"] is False and m["forget/rouge_l_recall"]["higher_is_better"] is False
    assert m["retain/probability"]["higher_is_better"] is True and m["forget/truth_ratio"]["higher_is_better"] is True


def test_scored_result_folder_is_self_contained_and_verifies(tofu_fixture_task, tiny_lm_dir, tmp_path, capsys):
    ref = tmp_path / "elsewhere" / "ref.json"
    build_reference(tofu_fixture_task.name, str(tiny_lm_dir), ref, progress=False)
    s = score(tofu_fixture_task.name, str(tiny_lm_dir), reference=ref, out_dir=tmp_path / "sub", progress=False)
    r = load_result(s.path)
    assert r["references"][0]["path"].startswith("reference-retain-")
    assert (tmp_path / "sub" / r["references"][0]["path"]).exists()
    assert main(["leaderboard", "validate", str(s.path)]) == 0
    assert main(["leaderboard", "verify", str(s.path)]) == 0
    # a tampered headline number is caught
    r["metrics"]["forget/probability"]["value"] += 1e-3
    s.path.write_text(json.dumps(r))
    assert main(["leaderboard", "verify", str(s.path)]) == 2
