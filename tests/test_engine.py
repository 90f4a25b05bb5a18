"""Registry, TaskSpec, result files, CLI listings and error handling."""

import json
import os
import subprocess
import sys

import pytest

from unlearnbench.cli import main
from unlearnbench.errors import UserError
from unlearnbench.metric import metric_value
from unlearnbench.registry import Registry
from unlearnbench.results import atomic_write_json, sha256_tree, write_result
from unlearnbench.spec import TaskSpec


def test_registry_duplicates_typos_lazy_entries_and_patterns():
    reg = Registry("widget")
    reg.register("alpha", 1, modality="llm")
    with pytest.raises(ValueError):
        reg.register("alpha", 2)
    with pytest.raises(UserError, match="did you mean 'alpha'"):
        reg.get("alpah")
    reg.register("lazy", "json:dumps")
    assert reg.get("lazy") is json.dumps
    reg.register_pattern("cls-<k>", r"cls-(?P<k>\d+)", lambda k: int(k) * 2, modality="classifier")
    assert reg.get("cls-21") == 42 and "cls-3" in reg and "cls-x" not in reg
    assert reg.names() == ["alpha", "lazy", "cls-<k>"]
    assert reg.meta("cls-5") == {"modality": "classifier"}


def test_taskspec_is_frozen_and_hash_tracks_changes():
    t = TaskSpec(name="x/y", modality="llm", protocol="tofu", settings={"a": 1})
    with pytest.raises(Exception):
        t.version = 2
    t2 = t.replace(version=2)
    assert t2.version == 2 and t.version == 1 and t2.spec_hash() != t.spec_hash()
    assert t.spec_hash() == TaskSpec(name="x/y", modality="llm", protocol="tofu", settings={"a": 1}).spec_hash()
    with pytest.raises(ValueError):
        TaskSpec(name="x", modality="audio", protocol="p")


def test_metric_value_stores_nonfinite_as_null_with_a_note():
    m = metric_value(float("nan"), True, 3, 0.1)
    assert m["value"] is None and "note" in m
    json.dumps(m, allow_nan=False)


def test_write_result_is_atomic_and_hashes_samples(tmp_path, monkeypatch):
    p = write_result(tmp_path, {"schema": "unlearnbench/result/v1", "metrics": {}}, [{"split": "a", "index": 0, "v": 1.5}], "s")
    res = json.loads(p.read_text())
    assert res["per_sample"]["rows"] == 1 and (tmp_path / res["per_sample"]["path"]).exists()
    # a failure while serialising leaves no file behind (NaN is refused by allow_nan=False)
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "bad.json", {"x": float("nan")})
    assert not (tmp_path / "bad.json").exists() and not list(tmp_path.glob(".bad.json*"))


def test_sha256_tree_prefers_weight_files(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"w")
    h1 = sha256_tree(tmp_path, (".safetensors",))
    (tmp_path / "README.md").write_text("docs")
    assert sha256_tree(tmp_path, (".safetensors",)) == h1
    (tmp_path / "model.safetensors").write_bytes(b"w2")
    assert sha256_tree(tmp_path, (".safetensors",)) != h1


@pytest.mark.parametrize("what,names", [("tasks", {"tofu/forget01", "tofu/forget05", "tofu/forget10"}),
                                        ("metrics", {"probability", "rouge_l_recall", "truth_ratio", "forget_quality", "model_utility"})])
def test_listings_as_json(capsys, what, names):
    assert main([what, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert names <= {r["name"] for r in rows}
    assert all("modality" in r for r in rows)


def test_methods_listing_is_json(capsys):
    assert main(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and all({"name", "modality"} <= set(r) for r in rows)


@pytest.mark.parametrize("argv,needle", [
    (["score", "tofu/forget11", "x"], "did you mean"),
    (["score", "tofu/forget10", "/no/such/model"], "not found"),
    (["score", "tofu/forget10", "x", "--reference", "/no/ref.json"], "reference file not found"),
    (["ingest", "nope-format", "--model-logs", "a", "-o", "b.json"], "unknown ingester"),
])
def test_user_errors_are_one_line_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "unlearnbench")
    proc = subprocess.run([exe, "score", "tofu/forget10", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
