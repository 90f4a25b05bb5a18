"""Every class of user mistake: one line on stderr, exit 2, nothing written, before the work.

In-process through ``unlearnbench.cli.main`` (capsys) where that is enough; through the real
console script (subprocess) for what only a process shows: argparse errors, the console
entry point's exit code, no retries against an unreachable hub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unlearnbench.cli import build_parser, main

EXE = os.path.join(os.path.dirname(sys.executable), "unlearnbench")


def _one_line(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("unlearnbench: error: ") and needle in err, err
    return err


def _fails(capsys, argv: list[str], needle: str) -> str:
    t0 = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 30  # before any scoring, training or world build
    return _one_line(capsys, needle)


def _console(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})},
                          timeout=300)


def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


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


# -- output paths: checked before loading anything --------------------------------------------------------
def test_output_that_is_a_file(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    f = tmp_path / "taken"
    f.write_text("mine")
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(f)], "exists and is not a folder")
    assert f.read_text() == "mine"


def test_output_under_a_file(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    (tmp_path / "file").write_text("x")
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(tmp_path / "file" / "sub")],
           "is a file")
    assert _tree(tmp_path) == {"file": b"x"}


def test_read_only_output_folder(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro.absolute() else real_access(p, mode))
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ro / "res")], "is not writable")
    assert not (ro / "res").exists()


def test_existing_result_is_refused_up_front_then_replaced_with_overwrite(capsys, tmp_path, tofu_fixture_task,
                                                                           tiny_lm_dir, monkeypatch):
    out = tmp_path / "out"
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(out), "--quiet"]) == 0
    capsys.readouterr()
    before = _tree(out)
    from unlearnbench import runner

    def no_loading(*a, **k):
        raise AssertionError("loaded a model although the result exists")

    monkeypatch.setattr(runner, "load_model", no_loading)
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(out)], "pass --overwrite")
    assert _tree(out) == before
    monkeypatch.undo()
    assert main(["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(out), "--quiet", "--overwrite"]) == 0


def test_reference_output_is_checked_first(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    ref = tmp_path / "ref.json"
    ref.write_text("{}")
    _fails(capsys, ["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ref)], "--overwrite")
    assert ref.read_text() == "{}"
    _fails(capsys, ["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(tmp_path)], "is a folder")


def test_ingest_does_not_replace_a_result(capsys, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("keep")
    _fails(capsys, ["ingest", "tofu-legacy", "--model-logs", str(tmp_path / "none.json"), "-o", str(out)], "--overwrite")
    assert out.read_text() == "keep"


def test_unlearn_refuses_an_existing_checkpoint_folder_before_training(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    folder = tmp_path / "runs" / "test-tofu-forget10__ga__s0.checkpoint"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"an earlier run")
    _fails(capsys, ["unlearn", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir),
                    "-o", str(tmp_path / "runs")], "not empty; pass --overwrite")
    assert _tree(tmp_path / "runs") == {"test-tofu-forget10__ga__s0.checkpoint/model.safetensors": b"an earlier run"}


def test_run_refuses_an_existing_result_before_training(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "test-tofu-forget10__mine__s3.result.json").write_text("{}")
    _fails(capsys, ["run", tofu_fixture_task.name, "--method", "npo", "--model", str(tiny_lm_dir), "--label", "mine",
                    "--seed", "3", "-o", str(out)], "pass --overwrite")
    assert _tree(out) == {"test-tofu-forget10__mine__s3.result.json": b"{}"}


# -- option values ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting,needle", [
    ("lr=nan", "lr must be a finite number"),
    ("lr=inf", "lr must be a finite number"),
    ("lr=0", "lr must be > 0"),
    ("lr=-1e-5", "lr must be > 0"),
    ("epochs=-3", "epochs must be >= 1"),
    ("epochs=0", "epochs must be >= 1"),
    ("epochs=2.5", "expected a value of type int"),
    ("batch_size=0", "batch_size must be >= 1"),
    ("grad_accum=0", "grad_accum must be >= 1"),
    ("warmup_ratio=1.5", "warmup_ratio must be >= 0 and <= 1"),
    ("max_steps=0", "max_steps must be >= 1"),
    ("beta=0", "beta must be > 0"),
    ("weight_decay=-0.1", "weight_decay must be >= 0"),
    ("seed=-1", "seed must be >= 0 and <= 4294967295"),
    ("lr_schedule=cosine", "lr_schedule must be one of 'linear', 'constant'"),
    ("lrr=1e-4", "did you mean lr"),
    ("lr", "expects KEY=VALUE"),
])
def test_set_values_are_checked_against_the_config_ranges(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir, setting,
                                                          needle):
    _fails(capsys, ["run", tofu_fixture_task.name, "--method", "npo", "--model", str(tiny_lm_dir), "--set", setting,
                    "-o", str(tmp_path / "o")], needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("setting,needle", [
    ("loss_config=[1]", "expected a value of type dict"),
    ("loss_config={oops", "expected a value of type dict"),
    ("mask_ratio=0", "mask_ratio must be > 0 and <= 1"),
    ("lr=none", None),  # None means "the wrapped method's default" here: accepted
])
def test_structured_and_optional_set_values(capsys, setting, needle):
    from unlearnbench.errors import UserError
    from unlearnbench.unlearning import get_method, make_config

    if needle is None:
        assert make_config(get_method("wagle", "llm"), [setting]).lr is None
        return
    with pytest.raises(UserError, match=needle.replace("[", r"\[")):
        make_config(get_method("wagle", "llm"), [setting])


def test_epochs_zero_is_allowed_with_max_steps():
    from unlearnbench.unlearning import get_method, make_config

    cfg = make_config(get_method("ga", "llm"), ["epochs=0", "max_steps=2"])
    assert (cfg.epochs, cfg.max_steps) == (0, 2)


def test_every_registered_config_default_is_in_range():
    """The declared ranges hold for every method's published defaults (no rule rejects a default)."""
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import METHODS
    from unlearnbench.unlearning import make_config

    load_all()
    for key in METHODS.names():
        method = METHODS.get(key)
        method = method() if isinstance(method, type) else method
        make_config(method)  # raises on a default outside its range


@pytest.mark.parametrize("args,needle", [
    (["--seed", "99999999999999999999999"], "seed must be in [0, 4294967295]"),
    (["--seed", "-1"], "seed must be in"),
    (["--seed", "one"], "seed must be an integer"),
    (["--batch-size", "0"], "batch size must be >= 1"),
    (["--batch-size", "many"], "positive integer or 'auto'"),
    (["--dtype", "float8"], "invalid choice"),
    (["--bogus-option"], "unrecognized arguments"),
])
def test_bad_option_values(capsys, tmp_path, args, needle):
    err = _fails(capsys, ["score", "mini-tofu/forget10", "world:target", "-o", str(tmp_path / "o"), *args], needle)
    assert "--help`)" in err and not (tmp_path / "o").exists()


def test_bad_option_value_through_the_console_script(tmp_path):
    """argparse's own errors are one line too (usage is not printed), with exit 2 from the entry point."""
    proc = _console(["score", "mini-tofu/forget10", "world:target", "-o", "out", "--seed", "99999999999999999999999"],
                    tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "seed must be in [0, 4294967295]" in lines[0], proc.stderr


def test_batch_size_auto_is_accepted_and_passed_through():
    args = build_parser().parse_args(["score", "t", "c", "--batch-size", "auto"])
    assert args.batch_size == "auto"
    assert build_parser().parse_args(["score", "t", "c", "--batch-size", "4"]).batch_size == 4


def test_bad_threads_variable(capsys, monkeypatch, tofu_fixture_task, tiny_lm_dir):
    monkeypatch.setenv("UNLEARNBENCH_THREADS", "lots")
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir)], "UNLEARNBENCH_THREADS")


# -- devices and modality options ---------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--device", "cuda", "-o", str(tmp_path / "o")],
           "CUDA is not available")
    assert not (tmp_path / "o").exists()


def test_unknown_device(capsys, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--device", "tpu"], "unknown device 'tpu'")


def test_options_of_another_modality(capsys, tmp_path):
    _fails(capsys, ["score", "digits/random-10", "world:target", "--dtype", "float16"], "scored in float32")
    _fails(capsys, ["score", "digits/random-10", "world:target", "--template", "qa"], "--template applies to LLM tasks")
    assert not list(tmp_path.iterdir())


def test_unknown_template(capsys, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--template", "qaa"], "did you mean qa")


# -- checkpoints, hub ids, data, references -------------------------------------------------------------------------
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


def test_reference_role_is_checked(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(tmp_path / "r.json"),
                    "--role", "bogus"], "uses a reference of role 'retain', not 'bogus'")
    _fails(capsys, ["reference", "build", "mini-wmdp/hazard", "world:target", "-o", str(tmp_path / "r.json")],
           "uses no reference artefact")
    assert not list(tmp_path.iterdir())


def test_reference_file_missing(capsys, tofu_fixture_task, tiny_lm_dir, tmp_path):
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(tmp_path / "nope.json")],
           "reference file not found")


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


def test_error_hints_name_commands_that_exist():
    """Every "(see `unlearnbench X`)" an unknown-name error prints is a real command."""
    from unlearnbench import registry

    parser = build_parser()
    commands = set(next(a for a in parser._actions if hasattr(a, "choices") and a.choices).choices)
    for attr in ("TASKS", "METRICS", "METHODS", "ARCHITECTURES", "PROTOCOLS", "WORLDS", "ATTACKS", "INGESTERS",
                 "MODEL_LOADERS"):
        msg = getattr(registry, attr)._unknown_message("zzz-nothing")
        if "see `unlearnbench " in msg:
            assert msg.split("see `unlearnbench ")[1].split("`")[0] in commands, msg
        else:
            assert "known: " in msg, msg


def test_diverging_training_is_one_line(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["unlearn", tofu_fixture_task.name, "--method", "ga", "--model", str(tiny_lm_dir), "--quiet",
                    "--set", "lr=1e30", "--set", "max_steps=4", "--set", "max_grad_norm=0", "-o", str(tmp_path / "o")],
           "ga diverged")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.safetensors"))
