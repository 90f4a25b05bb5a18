"""Runs are never lost: a checkpoint folder per run, its manifest read back by ``score``, a log per result."""

from __future__ import annotations

import json

import pytest

from unlearnbench.cli import main
from unlearnbench.results import load_result, sha256_file, weights_sha256

FAST = ["--set", "max_steps=1", "--quiet"]


@pytest.fixture(scope="module")
def reference(tiny_lm_dir, tofu_fixture_task, tmp_path_factory):
    ref = tmp_path_factory.mktemp("ref") / "retain.json"
    assert main(["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ref), "--quiet"]) == 0
    return ref


def test_two_seeds_of_run_into_one_folder_keep_both_checkpoints(tmp_path, tiny_lm_dir, tofu_fixture_task, reference,
                                                                capsys):
    out = tmp_path / "runs"
    for seed in ("0", "1"):
        assert main(["run", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir), "--reference",
                     str(reference), "--seed", seed, "-o", str(out), *FAST]) == 0
    capsys.readouterr()
    for seed in (0, 1):
        stem = f"test-tofu-forget10__ga__s{seed}"
        folder = out / f"{stem}.checkpoint"
        result = load_result(out / f"{stem}.result.json")
        manifest = json.loads((folder / "unlearn_config.json").read_text())
        assert manifest["seed"] == seed and manifest["method"] == "ga"
        # the result's weights hash is the hash of the files on disk, as `score FOLDER` computes it
        assert result["model"]["weights_sha256"] == weights_sha256(folder) == manifest["weights_sha256"]
        assert result["method"]["name"] == "ga" and result["method"]["manifest_sha256"] == sha256_file(
            folder / "unlearn_config.json")
        assert manifest["base_model"]["weights_sha256"] == weights_sha256(tiny_lm_dir)
        assert manifest["task"]["name"] == tofu_fixture_task.name and "torch" in manifest["versions"]
        assert "unlearned in" in (folder / manifest["log"]).read_text()
    assert weights_sha256(out / "test-tofu-forget10__ga__s0.checkpoint") != weights_sha256(
        out / "test-tofu-forget10__ga__s1.checkpoint")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_unlearn_then_score_records_the_method(tmp_path, tiny_lm_dir, tofu_fixture_task, reference, capsys):
    out = tmp_path / "runs"
    assert main(["unlearn", tofu_fixture_task.name, "--method", "npo", "--model", str(tiny_lm_dir), "--seed", "7",
                 "--set", "beta=0.5", "-o", str(out), *FAST]) == 0
    folder = out / "test-tofu-forget10__npo__s7.checkpoint"
    assert f"wrote unlearned checkpoint {folder}" in capsys.readouterr().out
    res = tmp_path / "res"
    assert main(["score", tofu_fixture_task.name, str(folder), "--reference", str(reference), "-o", str(res),
                 "--quiet"]) == 0
    result = load_result(res / "test-tofu-forget10__npo__s7.result.json")  # label and seed from the manifest
    manifest = json.loads((folder / "unlearn_config.json").read_text())
    assert result["method"]["name"] == "npo" and result["method"]["config"] == manifest["config"]
    assert result["method"]["config"]["beta"] == 0.5 and result["seed"] == 7 and result["label"] == "npo"
    assert manifest["command"][:4] == ["unlearnbench", "unlearn", tofu_fixture_task.name, "--method"]
    assert result["model"]["weights_sha256"] == manifest["weights_sha256"]
    assert main(["leaderboard", "validate", str(res / "test-tofu-forget10__npo__s7.result.json"), "--local"]) == 0


def test_edited_weights_are_flagged(tmp_path, tiny_lm_dir, tofu_fixture_task, capsys):
    out = tmp_path / "runs"
    assert main(["unlearn", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir), "-o", str(out),
                 *FAST]) == 0
    folder = out / "test-tofu-forget10__ga__s0.checkpoint"
    manifest = json.loads((folder / "unlearn_config.json").read_text())
    manifest["weights_sha256"] = "0" * 64
    (folder / "unlearn_config.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["score", tofu_fixture_task.name, str(folder), "--quiet"]) == 0
    assert "are not those `unlearnbench unlearn` saved" in capsys.readouterr().err


def _reference(tmp_path, task, model_dir) -> str:
    """A retain reference for the fixture task (a result without the one its task needs does not validate)."""
    ref = tmp_path / "reference.json"
    assert main(["reference", "build", task.name, str(model_dir), "-o", str(ref), "--quiet"]) == 0
    return str(ref)


def test_result_lists_its_log(tmp_path, tiny_lm_dir, tofu_fixture_task, capsys):
    out = tmp_path / "o"
    ref = _reference(tmp_path, tofu_fixture_task, tiny_lm_dir)
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(out), "--label", "tiny", "--quiet",
                 "--reference", ref]) == 0
    capsys.readouterr()
    result = load_result(out / "test-tofu-forget10__tiny__s0.result.json")
    (log,) = [a for a in result["attachments"] if a["role"] == "log"]
    assert log["path"] == "test-tofu-forget10__tiny__s0.log" and log["sha256"] == sha256_file(out / log["path"])
    text = (out / log["path"]).read_text()
    assert "command: unlearnbench score test-tofu/forget10" in text and "--label tiny" in text
    assert "versions: python" in text and "torch " in text and "inferred" in text and "timings: load_s" in text
    assert main(["leaderboard", "validate", str(out / "test-tofu-forget10__tiny__s0.result.json")]) == 0


def test_score_without_output_says_nothing_was_saved(tmp_path, tiny_lm_dir, tofu_fixture_task, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "--quiet"]) == 0
    assert "nothing was saved: pass -o DIR" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_quiet_silences_every_bar(tmp_path, tiny_lm_dir, tofu_fixture_task, capfd):
    """No progress output at all under --quiet (the library loading bars included); bars without it."""
    assert main(["unlearn", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir), "--set",
                 "max_steps=1", "-o", str(tmp_path / "a"), "--quiet"]) == 0
    assert capfd.readouterr().err == ""
    assert main(["unlearn", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir), "--set",
                 "max_steps=1", "-o", str(tmp_path / "b")]) == 0
    assert "unlearning (ga)" in capfd.readouterr().err


def test_attack_result_keeps_its_per_sample_file_and_log(tmp_path, tiny_lm_dir, tofu_fixture_task, capsys):
    """``attack`` rewrites the result with its robustness block: per-sample entry and log stay listed."""
    ref = _reference(tmp_path / "ref", tofu_fixture_task, tiny_lm_dir)
    assert main(["attack", tofu_fixture_task.name, str(tiny_lm_dir), "--attacks", "quantize", "--bits", "8",
                 "-o", str(tmp_path), "--quiet", "--reference", ref]) == 0
    capsys.readouterr()
    (path,) = tmp_path.glob("*.result.json")
    result = load_result(path)
    assert "robustness" in result and result["per_sample"]["rows"] > 0
    assert [a["role"] for a in result["attachments"]] == ["log"]
    assert main(["leaderboard", "validate", str(path)]) == 0
