"""Every class of user mistake: one line on stderr, exit 2, nothing written, before the work.

In-process through ``unlearnbench.cli.main`` (capsys) where that is enough; through the real
console script (subprocess) for what only a process shows: argparse errors and the console
entry point's exit code. Outputs, option values, devices and references here; broken
checkpoints, hub ids and data in ``test_user_errors_checkpoints.py``.
"""

from __future__ import annotations

import os
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
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(ro / "res")], f"{ro} is read-only")
    assert not (ro / "res").exists()


@pytest.mark.parametrize("argv", [
    ["demo", "--scale", "test"],
    ["table", "leaderboard/table_salun_digits.yaml"],
    ["attack", "mini-tofu/forget10", "world:target"],
])
def test_every_command_checks_its_output_folder_first(capsys, tmp_path, argv):
    f = tmp_path / "taken"
    f.write_text("mine")
    _fails(capsys, [*argv, "-o", str(f / "sub")], "is a file")
    assert _tree(tmp_path) == {"taken": b"mine"}


def test_output_file_under_a_file(capsys, tmp_path):
    (tmp_path / "taken").write_text("mine")
    _fails(capsys, ["leaderboard", "render", str(tmp_path / "lb.json"), "-o", str(tmp_path / "taken" / "x.html")],
           "cannot write output file")
    assert _tree(tmp_path) == {"taken": b"mine"}


def test_file_system_errors_during_a_command_are_one_line(capsys, monkeypatch):
    """A full disk (or any path condition no check foresaw) is reported in one line, not a traceback."""
    import errno

    from unlearnbench import cli

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/x.json")

    monkeypatch.setattr(cli, "_listing", full)
    assert _fails(capsys, ["tasks"], "No space left on device").endswith(": /somewhere/x.json")

    def bug(*a, **k):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(cli, "_listing", bug)  # not a path condition: a bug, shown as one
    with pytest.raises(OSError):
        main(["tasks"])


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


@pytest.mark.parametrize("args,needle", [
    (["--attacks", "quantize", "--group-size", "0"], "--group-size must be >= 1"),
    (["--attacks", "quantize", "--bits", "4,x"], "--bits expects comma-separated integers"),
    (["--attacks", "quantize", "--bits", "5"], "--bits must be 2, 3, 4 or 8"),
    (["--attacks", "relearn", "--relearn-lr", "nan"], "relearn attack (--relearn-*): lr must be a finite number"),
    (["--attacks", "relearn", "--relearn-epochs", "0"], "epochs must be >= 1"),
    (["--attacks", "relearn", "--relearn-fraction", "1.5"], "--relearn-fraction must be in (0, 1)"),
])
def test_attack_options_before_scoring(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir, args, needle):
    _fails(capsys, ["attack", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(tmp_path / "o"), *args], needle)
    assert not (tmp_path / "o").exists()


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


def test_chat_template_without_one_in_the_tokenizer(capsys, tofu_fixture_task, tiny_lm_dir, monkeypatch):
    from unlearnbench import runner

    inferred = []
    monkeypatch.setattr(type(runner.get_protocol(tofu_fixture_task)), "infer", lambda *a, **k: inferred.append(1))
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--template", "chat", "--quiet"], "has none")
    assert not inferred  # refused at load, not at the first prompt


# -- references, hints, training ----------------------------------------------------------------------------------
def test_reference_role_is_checked(capsys, tmp_path, tofu_fixture_task, tiny_lm_dir):
    _fails(capsys, ["reference", "build", tofu_fixture_task.name, str(tiny_lm_dir), "-o", str(tmp_path / "r.json"),
                    "--role", "bogus"], "uses a reference of role 'retain', not 'bogus'")
    _fails(capsys, ["reference", "build", "mini-wmdp/hazard", "world:target", "-o", str(tmp_path / "r.json")],
           "uses no reference artefact")
    assert not list(tmp_path.iterdir())


def test_reference_file_missing(capsys, tofu_fixture_task, tiny_lm_dir, tmp_path):
    _fails(capsys, ["score", tofu_fixture_task.name, str(tiny_lm_dir), "--reference", str(tmp_path / "nope.json")],
           "reference file not found")


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
