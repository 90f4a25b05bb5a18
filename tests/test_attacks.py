"""Robustness battery: RTN quantization vs NumPy, worst case, prompt rewriting, relearning, CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from unlearnbench import attacks as A
from unlearnbench.errors import UserError


# -- quantization ---------------------------------------------------------------------------
def _numpy_rtn(w: np.ndarray, bits: int, group: int) -> np.ndarray:
    """Independent reference: loop over rows and groups, symmetric absmax scale, round half to even."""
    qmax = 2 ** (bits - 1) - 1
    out = np.zeros_like(w, dtype=np.float64)
    for i in range(w.shape[0]):
        for s in range(0, w.shape[1], group):
            g = w[i, s:s + group].astype(np.float64)
            scale = np.float32(np.max(np.abs(g)).astype(np.float32) / np.float32(qmax))
            if scale == 0:
                continue
            q = np.clip(np.round(g.astype(np.float32) / scale), -qmax - 1, qmax)
            out[i, s:s + group] = q.astype(np.float32) * scale
    return out


def test_rtn_hand_example():
    w = torch.tensor([[0.75, -1.75, 0.25, 0.0]])
    codes, scales = A.rtn_quantize(w, bits=4, group_size=4)
    assert codes.tolist() == [[3, -7, 1, 0]]
    assert scales.tolist() == [[0.25]]
    assert A.rtn_dequantize(codes, scales, 4).tolist() == [[0.75, -1.75, 0.25, 0.0]]
    # 2 groups of 2: [0.75, -1.75] scale 0.25; [0.25, 0] scale 0.25/7
    codes, scales = A.rtn_quantize(w, bits=4, group_size=2)
    assert codes.tolist() == [[3, -7, 7, 0]]


@pytest.mark.parametrize("bits,group", [(8, 128), (4, 128), (4, 5), (8, 7)])
def test_rtn_matches_numpy(bits, group):
    g = torch.Generator().manual_seed(bits * 100 + group)
    w = torch.randn(6, 19, generator=g) * 0.1
    w[2] = 0.0  # an all-zero row stays zero
    codes, scales = A.rtn_quantize(w, bits, group)
    deq = A.rtn_dequantize(codes, scales, group).numpy()
    np.testing.assert_allclose(deq, _numpy_rtn(w.numpy(), bits, group), rtol=0, atol=1e-7)
    assert int(codes.max()) <= 2 ** (bits - 1) - 1 and int(codes.min()) >= -(2 ** (bits - 1))
    # at most half a step of error per element
    step = scales.repeat_interleave(group, 1)[:, :19].numpy()
    assert np.all(np.abs(deq - w.numpy()) <= step / 2 + 1e-7)


def test_rtn_rejects_bad_bits():
    with pytest.raises(UserError):
        A.rtn_quantize(torch.zeros(2, 2), bits=5)


def test_quantize_model_copies_and_skips_head(tiny_lm_dir):
    from unlearnbench.causal_lm import CausalLM

    lm = CausalLM.load(str(tiny_lm_dir), device="cpu")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    q = A.quantize_model(lm, bits=4, group_size=8)
    after = q.model.state_dict()
    for k, v in lm.model.state_dict().items():  # the scored model is untouched
        assert torch.equal(v, before[k])
    assert torch.equal(after["lm_head.weight"], before["lm_head.weight"])
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    w = before["model.layers.0.self_attn.q_proj.weight"]
    expect = _numpy_rtn(w.numpy(), 4, 8)
    np.testing.assert_allclose(after["model.layers.0.self_attn.q_proj.weight"].numpy(), expect, atol=1e-7)
    assert not torch.equal(after["model.layers.0.mlp.up_proj.weight"], before["model.layers.0.mlp.up_proj.weight"])
    assert q.quantized_layers == 2 * 7  # 7 Linear layers per Llama block, 2 blocks, head excluded


# -- worst case and the result block ---------------------------------------------------------------
def test_worst_case_directions():
    attacks = {
        "none": {"forget/probability": 0.1, "forget/rouge_l_recall": 0.2, "forget/truth_ratio": 0.9, "forget_quality": 0.5},
        "relearn": {"forget/probability": 0.4, "forget/rouge_l_recall": 0.1, "forget/truth_ratio": 0.6, "forget_quality": 0.01},
        "quantize/int4": {"forget/probability": 0.3, "forget/rouge_l_recall": 0.5, "forget/truth_ratio": 0.7},
    }
    w = A.worst_case(attacks)
    assert w["forget/probability"] == {"value": 0.4, "attack": "relearn"}
    assert w["forget/rouge_l_recall"] == {"value": 0.5, "attack": "quantize/int4"}
    assert w["forget/truth_ratio"] == {"value": 0.6, "attack": "relearn"}
    assert w["forget_quality"] == {"value": 0.01, "attack": "relearn"}


def test_add_and_write_robustness(tmp_path):
    from unlearnbench.results import RESULT_SCHEMA

    result = {"schema": RESULT_SCHEMA, "metrics": {"forget/probability": {"value": 0.2}, "forget_quality": {"value": 0.3},
                                                    "model_utility": {"value": 0.6}}}
    outs = [A.AttackOutcome("quantize/int8", {"forget/probability": 0.25, "forget_quality": 0.4}, {"settings": {"bits": 8}})]
    path = tmp_path / "r.result.json"
    path.write_text(json.dumps(result))
    updated = A.write_robustness(path, result, outs)
    saved = json.loads(path.read_text())
    assert saved == updated
    rob = saved["robustness"]
    assert rob["schema"] == "unlearnbench/robustness/v1"
    assert rob["attacks"]["none"] == {"forget/probability": 0.2, "forget_quality": 0.3, "model_utility": 0.6}
    assert rob["worst_case"]["forget/probability"] == {"value": 0.25, "attack": "quantize/int8"}
    assert rob["worst_case"]["forget_quality"] == {"value": 0.3, "attack": "none"}
    assert rob["details"]["quantize/int8"] == {"settings": {"bits": 8}}
    assert "robustness" not in result  # the input dict is not modified


# -- prompt rewriting -----------------------------------------------------------------------------
def test_rewrite_variants():
    rng = random.Random(0)
    row = {"question": "Where was Ava Lund born?", "author": "Ava Lund", "attribute": "birthplace"}
    assert A.rewrite_question(row, "paraphrase", rng) == "What is the birthplace of Ava Lund?"
    assert A.rewrite_question({"question": "Q?", "paraphrased_question": "P?"}, "paraphrase", rng) == "P?"
    step = A.rewrite_question(row, "step_by_step", rng)
    assert step.startswith("Where was Ava Lund born? ") and "step by step" in step
    ind = A.rewrite_question(row, "indirect", random.Random(3))
    assert ind.endswith("Where was Ava Lund born?") and ind != row["question"]
    with pytest.raises(UserError):
        A.rewrite_question({"question": "Q?"}, "paraphrase", rng)
    with pytest.raises(UserError):
        A.rewrite_question(row, "leetspeak", rng)


def test_prompt_task_rewrites_forget_only(tofu_fixture_task):
    from unlearnbench.tasks.llm_data import load_split

    t = tofu_fixture_task
    d1 = A.prompt_task(t, "indirect", seed=1)
    d2 = A.prompt_task(t, "indirect", seed=1)
    assert d1.source == d2.source and d1.source["kind"] == "local"
    orig, new = load_split(t, "forget"), load_split(d1, "forget")
    assert [r["answer"] for r in new] == [r["answer"] for r in orig]
    assert [r["perturbed_answer"] for r in new] == [r["perturbed_answer"] for r in orig]
    assert all(n["question"] != o["question"] and n["question"].endswith(o["question"]) for n, o in zip(new, orig))
    for role in ("retain", "real_authors", "world_facts", "forget_train"):
        assert load_split(d1, role) == load_split(t, role)


# -- relearning -------------------------------------------------------------------------------------
def test_split_relearn_deterministic():
    rows = [{"question": f"q{i}"} for i in range(12)]
    idx, qs = A.split_relearn(rows, 0.25, seed=5)
    assert len(idx) == 3 and idx == A.split_relearn(rows, 0.25, seed=5)[0]
    assert qs == {f"q{i}" for i in idx}
    assert all(A.split_relearn(rows, 0.5, seed=s)[0] != A.split_relearn(rows, 0.5, seed=s + 1)[0] for s in range(3))
    with pytest.raises(UserError):
        A.split_relearn(rows, 1.0, 0)


def test_relearn_attack_recovers_on_tiny_model(tofu_fixture_task, tiny_lm_dir):
    """Relearning a random model on part of the forget set raises the probability of held-back answers
    that share words with the relearned ones; the scored model itself is untouched."""
    from unlearnbench.causal_lm import CausalLM

    lm = CausalLM.load(str(tiny_lm_dir), device="cpu")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    cfg = A.RelearnConfig(fraction=0.5, epochs=3, lr=1e-2, batch_size=4, seed=0)
    out = A.relearn_attack(tofu_fixture_task, lm, config=cfg, progress=False)
    assert out.name == "relearn"
    assert out.details["n_relearn"] == 3 and out.details["n_held_back"] == 3
    rec = out.details["recovery"]
    assert rec["forget/probability"] == pytest.approx(out.metrics["forget/probability"] - out.details["before"]["forget/probability"])
    assert rec["forget/probability"] > 0
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, before[k])
    again = A.relearn_attack(tofu_fixture_task, lm, config=cfg, progress=False)
    assert again.metrics == out.metrics  # same seed, same numbers


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_attacks_listing(capsys):
    from unlearnbench.cli import main

    assert main(["attacks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = {r["name"]: r for r in rows if r["name"] in ("relearn", "quantize", "prompt")}
    assert set(mine) == {"relearn", "quantize", "prompt"}  # other modalities may list their own attacks
    assert all(r["modality"] == "llm" and r["description"] for r in mine.values())


def test_cli_attack_end_to_end(tofu_fixture_task, tiny_lm_dir, tmp_path, capsys):
    from unlearnbench.cli import main

    rc = main(["attack", tofu_fixture_task.name, str(tiny_lm_dir), "--attacks", "quantize,prompt", "--bits", "4",
               "--variants", "step_by_step", "-o", str(tmp_path), "--quiet", "--label", "tiny"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "worst case" in out and "quantize/int4" in out
    res = json.loads(next(tmp_path.glob("*.result.json")).read_text())
    rob = res["robustness"]
    assert set(rob["attacks"]) == {"none", "quantize/int4", "prompt/step_by_step"}
    assert set(rob["worst_case"]) >= {"forget/probability", "forget/rouge_l_recall", "forget/truth_ratio"}
    probs = {k: v["forget/probability"] for k, v in rob["attacks"].items()}
    assert rob["worst_case"]["forget/probability"]["value"] == max(probs.values())


def test_cli_attack_user_errors(tofu_fixture_task, tiny_lm_dir, capsys):
    from unlearnbench.cli import main

    assert main(["attack", tofu_fixture_task.name, str(tiny_lm_dir), "--attacks", "quantise", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "quantize" in err and len(err.strip().splitlines()) == 1
    assert main(["attack", tofu_fixture_task.name, str(tiny_lm_dir), "--attacks", "prompt", "--variants", "x"]) == 2
