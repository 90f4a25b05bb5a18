"""User mistakes in what is loaded: broken checkpoints, hub ids, missing data, manifests.

Each one line on stderr, exit 2, nothing written (helpers in ``test_user_errors.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import torch

from test_user_errors import _console, _fails


@pytest.fixture(scope="module")
def broken(tiny_lm_dir, tmp_path_factory):
    """Copies of the tiny LM folder, each broken one way."""
    root = tmp_path_factory.mktemp("broken")

    def make(name, edit):
        d = root / name
        shutil.copytree(tiny_lm_dir, d)
        edit(d)
        return d

    def set_config(d, **kv):
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(kv)
        (d / "config.json").write_text(json.dumps(cfg))

    def drop_layer(d):
        from safetensors.torch import load_file, save_file

        sd = load_file(str(d / "model.safetensors"))
        save_file({k: v for k, v in sd.items() if ".layers.1." not in k}, str(d / "model.safetensors"),
                  metadata={"format": "pt"})

    def grow_vocab(d):
        tok = json.loads((d / "tokenizer.json").read_text())
        vocab = tok["model"]["vocab"]
        for i in range(10):
            vocab[f"zz{i}"] = len(vocab)
        (d / "tokenizer.json").write_text(json.dumps(tok))

    def evil_pickle(d):
        class Payload:
            def __reduce__(self):
                return (os.system, (f"touch {root / 'PWNED'}",))

        (d / "model.safetensors").unlink()
        torch.save({"w": Payload()}, d / "pytorch_model.bin")

    weights = (tiny_lm_dir / "model.safetensors").read_bytes()
    return root, {
        "truncated": make("truncated", lambda d: (d / "model.safetensors").write_bytes(weights[: len(weights) // 2])),
        "empty": make("empty", lambda d: (d / "model.safetensors").write_bytes(b"")),
        "five-bytes": make("five", lambda d: (d / "model.safetensors").write_bytes(b"hello")),
        "config-list": make("cfglist", lambda d: (d / "config.json").write_text("[1, 2]")),
        "config-not-json": make("cfgjson", lambda d: (d / "config.json").write_text("{oops")),
        "config-sizes": make("cfgsize", lambda d: set_config(d, hidden_size=64, intermediate_size=128)),
        "missing-tensors": make("missing", drop_layer),
        "vocab-too-large": make("vocab", grow_vocab),
        "template-key": make("tmplkey", lambda d: (d / "unlearnbench_template.json").write_text(
            json.dumps({"name": "qa", "prefix": "Q: ", "bogus": 1}))),
        "template-list": make("tmpllist", lambda d: (d / "unlearnbench_template.json").write_text("[]")),
        "pickle": make("pickle", evil_pickle),
        "no-config": make("noconfig", lambda d: (d / "config.json").unlink()),
    }


BROKEN = {
    "truncated": "not a readable safetensors file",
    "empty": "model.safetensors is empty",
    "five-bytes": "not a readable safetensors file",
    "config-list": "config.json must be a JSON object",
    "config-not-json": "config.json is not valid JSON",
    "config-sizes": "from config.json",
    "missing-tensors": "missing from the weights",
    "vocab-too-large": "the tokenizer has",
    "template-key": "unknown key 'bogus'",
    "template-list": "must be a JSON object",
    "pickle": "refused to unpickle",
    "no-config": "is not a model folder",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_llm_checkpoint_is_one_line_and_writes_nothing(capsys, tmp_path, tofu_fixture_task, broken, case):
    root, folders = broken
    out = tmp_path / "out"
    _fails(capsys, ["score", tofu_fixture_task.name, str(folders[case]), "-o", str(out), "--quiet"], BROKEN[case])
    assert not out.exists()
    assert not (root / "PWNED").exists()  # the pickle's payload never ran


def test_truncated_gguf(capsys, tmp_path, tofu_fixture_task):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF\x03\x00\x00\x00")  # the magic and a version, then nothing
    _fails(capsys, ["score", tofu_fixture_task.name, str(f), "-o", str(tmp_path / "o")], "cannot load a causal LM")
    assert not (tmp_path / "o").exists()


def test_broken_checkpoint_through_the_console_script(tmp_path, broken):
    """The real entry point: exit 2, one stderr line, for a checkpoint that used to crash mid-load."""
    _, folders = broken
    proc = _console(["score", "mini-tofu/forget10", str(folders["truncated"]), "-o", "out", "--quiet"], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not a readable safetensors file" in proc.stderr and not (tmp_path / "out").exists()


# -- hub ids and data ---------------------------------------------------------------------------------------------
def test_missing_local_path_that_looks_like_a_hub_id(capsys, tmp_path, tofu_fixture_task, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would be retried for a minute if taken for a hub id
    _fails(capsys, ["score", tofu_fixture_task.name, "runs/npo"], "checkpoint not found: runs/npo")


def test_hub_id_offline_fails_at_once(capsys, tofu_fixture_task):
    t0 = time.perf_counter()
    _fails(capsys, ["score", tofu_fixture_task.name, "some-org/some-model"], "hub downloads are off (HF_HUB_OFFLINE=1)")
    assert time.perf_counter() - t0 < 5


def test_hub_id_with_an_unreachable_hub_fails_at_once(capsys, tofu_fixture_task, monkeypatch):
    from unlearnbench import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    hub._probe.cache_clear()
    t0 = time.perf_counter()
    _fails(capsys, ["score", tofu_fixture_task.name, "some-org/some-model"], "cannot be reached")
    assert time.perf_counter() - t0 < 5


def test_hub_dataset_missing_offline(capsys, tmp_path, tiny_lm_dir):
    _fails(capsys, ["score", "tofu/forget10", str(tiny_lm_dir), "-o", str(tmp_path / "o")], "'locuslab/TOFU'")
    assert not (tmp_path / "o").exists()


def test_local_data_missing(capsys, tofu_fixture_task, tiny_lm_dir, tmp_path):
    from unlearnbench.registry import TASKS

    name = "test-tofu/missing-data"
    if name not in TASKS:
        TASKS.register(name, tofu_fixture_task.replace(name=name, source={"kind": "local", "path": str(tmp_path / "no")}))
    _fails(capsys, ["score", name, str(tiny_lm_dir)], "data of task test-tofu/missing-data not found")


# -- manifests, classifiers, diffusion ---------------------------------------------------------------------------
def test_malformed_manifest(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_lm_dir, ck)
    (ck / "unlearn_config.json").write_text(json.dumps(["ga"]))
    _fails(capsys, ["score", tofu_fixture_task.name, str(ck), "-o", str(tmp_path / "o")], "is not a manifest")
    assert not (tmp_path / "o").exists()


def test_broken_classifier_config(capsys, tmp_path):
    from unlearnbench.classifier import Classifier

    ck = Classifier.new("digits-cnn").save(tmp_path / "ck")
    doc = json.loads((ck / "classifier.json").read_text())
    (ck / "classifier.json").write_text(json.dumps({**doc, "kwargs": [1, 2]}))
    _fails(capsys, ["score", "digits/random-10", str(ck), "-o", str(tmp_path / "o")], "'kwargs' must be a JSON object")
    (ck / "classifier.json").write_text(json.dumps({**doc, "architecture": "resnet-99"}))
    err = _fails(capsys, ["score", "digits/random-10", str(ck)], "unknown architecture 'resnet-99'")
    assert "known: " in err and "unlearnbench architectures" not in err
    (ck / "model.safetensors").write_bytes(b"12345")
    (ck / "classifier.json").write_text(json.dumps(doc))
    _fails(capsys, ["score", "digits/random-10", str(ck)], "cannot read safetensors file")
    assert not (tmp_path / "o").exists()


def test_diffusion_inputs(capsys, tmp_path, tiny_sd_dir, monkeypatch):
    """A diffusion pipeline: a broken swapped component, an unreachable hub id, the I2P CSV not set."""
    bad = tmp_path / "unet.safetensors"
    bad.write_bytes(b"12345")
    _fails(capsys, ["score", "mini-canvas/object/circle", f"{tiny_sd_dir}+unet={bad}", "-o", str(tmp_path / "o"),
                    "--quiet"], "not a readable safetensors file")
    _fails(capsys, ["score", "mini-canvas/object/circle", "CompVis/stable-diffusion-v1-4"], "hub downloads are off")
    _fails(capsys, ["score", "mini-canvas/object/circle", f"{tiny_sd_dir}+unet={tmp_path / 'none'}"],
           "unet weights not found")
    monkeypatch.delenv("UNLEARNBENCH_I2P_CSV", raising=False)
    _fails(capsys, ["score", "i2p/nudity", str(tiny_sd_dir)], "$UNLEARNBENCH_I2P_CSV")
    assert not (tmp_path / "o").exists()
