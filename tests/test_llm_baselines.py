"""LLM unlearning losses (hand-computed examples) and the shared loop (tiny in-memory model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearnbench.baselines import llm_losses as L
from unlearnbench.errors import UserError


# -- losses on hand-computed examples ----------------------------------------------------------
def _toy_logits():
    # B=1, T=3, V=2. Position 0 predicts token 1 (label 0): softmax([0,0]) -> p = 1/2.
    # Position 1 predicts token 2 (label 1): softmax([ln 3, 0]) -> p = 1/4. Token 0 is prompt.
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]]])
    labels = torch.tensor([[-100, 0, 1]])
    return logits, labels


def test_sequence_logprob_and_nll_by_hand():
    logits, labels = _toy_logits()
    lp, n = L.sequence_logprob(logits, labels)
    assert n.tolist() == [2]
    assert lp.item() == pytest.approx(math.log(0.5) + math.log(0.25), abs=1e-6)  # log(1/8)
    assert L.nll(logits, labels).item() == pytest.approx(-math.log(1 / 8) / 2, abs=1e-6)
    assert L.ga_loss(logits, labels).item() == pytest.approx(math.log(1 / 8) / 2, abs=1e-6)


def test_nll_is_token_mean_over_the_batch():
    # two sequences with 1 and 2 answer tokens: token mean over 3 tokens, not mean of means
    logits = torch.zeros(2, 3, 4)  # uniform: every token has p = 1/4
    labels = torch.tensor([[-100, -100, 2], [-100, 1, 3]])
    assert L.nll(logits, labels).item() == pytest.approx(math.log(4), abs=1e-6)
    lp, n = L.sequence_logprob(logits, labels)
    assert n.tolist() == [1, 2]
    assert lp.tolist() == pytest.approx([-math.log(4), -2 * math.log(4)], abs=1e-6)


def test_npo_loss_by_hand():
    logp, ref = torch.tensor([-2.0, -4.0]), torch.tensor([-1.0, -1.0])
    # (2/b) mean log(1 + exp(b (logp - ref))) with b = 0.1: log(1+e^-0.1) = 0.644397, log(1+e^-0.3) = 0.554355
    expected = 20.0 * (0.6443966600735709 + 0.5543552444685272) / 2
    assert L.npo_loss(logp, ref, 0.1).item() == pytest.approx(expected, rel=1e-6)
    # at logp == ref the loss is (2/b) log 2 and its gradient wrt logp is 1 (per example: 1/B)
    x = torch.tensor([-3.0], requires_grad=True)
    loss = L.npo_loss(x, torch.tensor([-3.0]), 0.5)
    loss.backward()
    assert loss.item() == pytest.approx(4 * math.log(2), rel=1e-6)
    assert x.grad.item() == pytest.approx(1.0, rel=1e-6)


def test_simnpo_loss_by_hand():
    logp, n = torch.tensor([-2.0, -6.0]), torch.tensor([4, 3])
    # -(2/b) mean log sigmoid(-b logp/|y| - g), b = 4.5, g = 0: args 2.25 and 9
    expected = (2 / 4.5) * (np.log1p(np.exp(-2.25)) + np.log1p(np.exp(-9.0))) / 2
    assert L.simnpo_loss(logp, n, 4.5, 0.0).item() == pytest.approx(expected, rel=1e-6)
    # the margin g shifts the argument: g = 1 -> args 1.25 and 8
    expected_g = (2 / 4.5) * (np.log1p(np.exp(-1.25)) + np.log1p(np.exp(-8.0))) / 2
    assert L.simnpo_loss(logp, n, 4.5, 1.0).item() == pytest.approx(expected_g, rel=1e-6)


def test_dpo_loss_by_hand():
    lw, rw, ll, rl = (torch.tensor([v]) for v in (-3.0, -5.0, -2.0, -1.0))
    # margin = (-3 + 5) - (-2 + 1) = 3; -(2/b) log sigmoid(b * 3), b = 0.1 -> 20 * log(1 + e^-0.3)
    assert L.dpo_loss(lw, rw, ll, rl, 0.1).item() == pytest.approx(20 * 0.5543552444685272, rel=1e-6)


def test_kl_on_answers_by_hand():
    labels = torch.tensor([[-100, 1, 0]])  # positions 0 and 1 are scored
    p = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])
    q = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0], [0.0, 9.0]]])
    # position 0: KL(ref=[3/4,1/4] || model=[1/2,1/2]) = 3/4 ln(3/2) + 1/4 ln(1/2); position 1: 0
    kl0 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert L.kl_on_answers(p, q, labels).item() == pytest.approx(kl0 / 2, rel=1e-6)
    assert L.kl_on_answers(p, p, labels).item() == pytest.approx(0.0, abs=1e-7)


def test_rmu_terms_by_hand():
    g = torch.Generator().manual_seed(3)
    c = L.rmu_control_vector(4, 6.5, g)
    assert c.norm().item() == pytest.approx(6.5, rel=1e-6) and bool((c >= 0).all())
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    control = torch.tensor([1.0, 0.0])
    mask = torch.tensor([[1, 0]])  # the second position is padding and is ignored
    hr, hr0 = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]), torch.tensor([[[0.0, 3.0], [9.0, 9.0]]])
    forget, retain = L.rmu_loss(h, control, mask, hr, hr0, mask, alpha=10.0)
    assert forget.item() == pytest.approx(((1 - 1) ** 2 + (2 - 0) ** 2) / 2)  # 2.0
    assert retain.item() == pytest.approx(10.0 * (1 + 4) / 2)  # 25.0


# -- the shared loop on a tiny in-memory model ------------------------------------------------
QA = [{"question": f"What is fact {i}?", "answer": f"Fact {i} is {w}."}
      for i, w in enumerate("apple river stone cloud maple ember quartz willow lantern harbor".split())]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from unlearnbench.tasks.mini_tofu_models import new_model, train_qa, train_tokenizer

    d = tmp_path_factory.mktemp("tok")
    texts = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in QA] + ["I don't know.", "No idea."]
    train_tokenizer(texts, 300).save_pretrained(d)
    r = {"hidden": 32, "intermediate": 64, "layers": 3, "heads": 2, "seed": 0}
    lm = new_model(d, r)
    train_qa(lm, QA, epochs=8, lr=1e-2, batch_size=5, warmup=0.1, seed=0, progress=False)
    return lm


def _copy(lm):
    import copy

    from unlearnbench.causal_lm import CausalLM

    return CausalLM(copy.deepcopy(lm.model), lm.tokenizer, template=lm.template, name="tiny")


def _data():
    return {"forget": QA[:4], "retain": QA[4:], "idk": ["I don't know.", "No idea."], "forget_id": []}


def _run(lm, name, seed=0, **over):
    from unlearnbench.unlearning import get_method, make_config

    method = get_method(name, "llm")
    if name == "rmu":  # RMU's defaults are Zephyr-7B's (layer 7 of 32); the tiny model has 2 layers
        over = {"layer": -1, "lr": 1e-3, **over}
    cfg = make_config(method, {"max_steps": 3, "batch_size": 2, "seed": seed, **over})
    return method.unlearn(_copy(lm), None, cfg, data=_data(), progress=False)


def _state(lm):
    return {k: v.clone() for k, v in lm.model.state_dict().items()}


def _forget_nll(lm):
    ll = lm.loglik([lm.render(r["question"]) for r in QA[:4]], [r["answer"] for r in QA[:4]])
    return float(np.mean([-x.mean() for x in ll]))


@pytest.mark.parametrize("name", ["ga", "graddiff", "npo", "simnpo", "idkpo", "rmu"])
def test_every_method_runs_and_moves_the_weights(tiny_lm, name):
    out = _run(tiny_lm, name)
    before, after = _state(tiny_lm), _state(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert len(out.train_history) == 3 and all(np.isfinite(h["loss"]) for h in out.train_history)
    assert out.template == tiny_lm.template and out.tokenizer is tiny_lm.tokenizer


def test_ga_raises_forget_nll_more_than_it_raises_retain(tiny_lm):
    out = _run(tiny_lm, "ga", max_steps=6, lr=5e-3)
    assert _forget_nll(out) > _forget_nll(tiny_lm) + 0.5


def test_same_seed_same_weights_other_seed_other_weights(tiny_lm):
    a, b, c = _run(tiny_lm, "npo", seed=1), _run(tiny_lm, "npo", seed=1), _run(tiny_lm, "npo", seed=2)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_rmu_leaves_unselected_weights_bit_identical(tiny_lm):
    out = _run(tiny_lm, "rmu", layer=1, n_update_layers=2, weight_decay=0.1)
    before, after = _state(tiny_lm), _state(out)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"}


def test_rmu_reads_the_decoder_layer_output_not_the_final_norm(tiny_lm):
    # WMDP's forward_with_cache hooks model.model.layers[l]; HF's hidden_states[l + 1] equals it
    # except at the last layer, where it is the final RMSNorm's output.
    from unlearnbench.baselines.rmu import layer_output

    m = tiny_lm.model.eval()
    enc = tiny_lm.tokenizer(["What is fact 3?", "Fact 1 is river."], return_tensors="pt", padding=True)
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    with torch.no_grad():
        hs = m(**batch, output_hidden_states=True).hidden_states
        outs = [layer_output(m, batch, layer) for layer in m.model.layers]
    assert torch.allclose(outs[0], hs[1]) and torch.allclose(outs[1], hs[2])
    assert torch.allclose(m.model.norm(outs[-1]), hs[-1])  # hidden_states[-1] is normed ...
    assert not torch.allclose(outs[-1], hs[-1], atol=1e-3)  # ... the layer output is not


def test_constant_schedule_keeps_the_lr_and_linear_decays_it(tiny_lm, monkeypatch):
    seen = {}
    real = torch.optim.lr_scheduler.LambdaLR

    class Spy(real):
        def __init__(self, opt, fn):
            seen["lrs"] = [fn(s) for s in range(4)]
            super().__init__(opt, fn)

    monkeypatch.setattr(torch.optim.lr_scheduler, "LambdaLR", Spy)
    _run(tiny_lm, "rmu", max_steps=4)
    assert seen["lrs"] == [1.0, 1.0, 1.0, 1.0]  # RMU: plain AdamW at a constant lr
    _run(tiny_lm, "ga", max_steps=4, warmup_ratio=0.0)
    assert seen["lrs"] == [1.0, 0.75, 0.5, 0.25]  # TOFU: linear decay
    with pytest.raises(UserError, match="lr_schedule"):
        _run(tiny_lm, "ga", lr_schedule="cosine")


def test_lora_is_merged_back(tiny_lm):
    out = _run(tiny_lm, "ga", lora_r=2, lr=1e-2)
    assert type(out.model).__name__ == "LlamaForCausalLM"
    before, after = _state(tiny_lm), _state(out)
    assert set(before) == set(after)
    assert any(not torch.equal(before[k], after[k]) for k in before if "proj" in k)


def test_grad_accum_counts_optimizer_steps(tiny_lm):
    out = _run(tiny_lm, "ga", grad_accum=2, max_steps=2)
    assert [h["step"] for h in out.train_history] == [1, 2]


def test_user_mistakes_are_user_errors(tiny_lm):
    from unlearnbench.unlearning import get_method, make_config

    with pytest.raises(UserError, match="batch_size"):
        _run(tiny_lm, "ga", batch_size=0)
    with pytest.raises(UserError, match="retain_loss"):
        _run(tiny_lm, "graddiff", retain_loss="mse")
    with pytest.raises(UserError, match="layer"):
        _run(tiny_lm, "rmu", layer=10)
    with pytest.raises(UserError, match="did you mean"):
        make_config(get_method("npo", "llm"), {"betta": "0.2"})
    with pytest.raises(UserError, match="retain set"):
        get_method("npo", "llm").unlearn(_copy(tiny_lm), None, make_config(get_method("npo", "llm")),
                                         data={"forget": QA[:2], "retain": []}, progress=False)


def test_task_defaults_sit_between_config_defaults_and_overrides():
    from unlearnbench.runner import get_task
    from unlearnbench.unlearning import get_method, make_config

    rmu = get_method("rmu", "llm")
    paper = make_config(rmu)
    assert (paper.layer, paper.steering_coeff, paper.alpha, paper.lr, paper.max_steps) == (7, 6.5, 1200.0, 5e-5, 150)
    assert (paper.lr_schedule, paper.max_grad_norm, paper.warmup_ratio) == ("constant", 0.0, 0.0)  # plain AdamW
    world = make_config(rmu, None, get_task("mini-wmdp/hazard"))
    assert world.layer == -2 and world.steering_coeff != 6.5 and world.max_steps is None
    mine = make_config(rmu, ["steering_coeff=9"], get_task("mini-wmdp/hazard"))
    assert mine.steering_coeff == 9.0 and mine.layer == world.layer
    assert make_config(rmu, None, get_task("wmdp/bio")) == paper  # real tasks keep the paper's values
    simnpo = make_config(get_method("simnpo", "llm"), None, get_task("mini-tofu/forget05"))
    assert simnpo.beta != make_config(get_method("simnpo", "llm")).beta


def test_methods_are_registered_with_citations():
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import METHODS

    load_all()
    for name in ("ga", "graddiff", "npo", "simnpo", "idkpo", "rmu"):
        meta = METHODS.meta(f"llm:{name}")
        assert meta["paper"] and meta["description"]


# -- accelerate: the same loop under `accelerate launch` with 2 CPU processes ------------------
_LAUNCHED = r'''
import hashlib, json, sys
import torch
from accelerate import PartialState
from unlearnbench.causal_lm import CausalLM
from unlearnbench.unlearning import get_method, make_config

model_dir, out_dir = sys.argv[1], sys.argv[2]
state = PartialState(cpu=True)  # gloo; the loop's Accelerator(cpu=True) shares this state
data = json.load(open(f"{model_dir}/data.json"))
lm = CausalLM.load(model_dir, device="cpu")
method = get_method("npo", "llm")
cfg = make_config(method, {"max_steps": 2, "batch_size": 2, "seed": 0})
out = method.unlearn(lm, None, cfg, data=data, progress=False)
h = hashlib.sha256(b"".join(v.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                            for _, v in sorted(out.model.state_dict().items()))).hexdigest()
open(f"{out_dir}/hash_{state.process_index}.txt", "w").write(f"{state.num_processes} {h}")
'''


@pytest.mark.slow
def test_loop_runs_under_accelerate_launch_with_two_cpu_processes(tiny_lm, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys

    model_dir = tmp_path / "model"
    tiny_lm.save(model_dir)
    (model_dir / "data.json").write_text(json.dumps(_data()))
    script = tmp_path / "launched.py"
    script.write_text(_LAUNCHED)
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNLEARNBENCH_QUIET": "1"}
    # `accelerate launch --cpu` starts ONE process unless MPI is set up; the torchrun-based launcher
    # (--multi_gpu) starts two, and Accelerator(cpu=True) then runs DDP over gloo on the CPU.
    proc = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(script), str(model_dir),
                           str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hashes = [(tmp_path / f"hash_{i}.txt").read_text().split() for i in range(2)]
    assert hashes[0][0] == "2" and hashes[1][0] == "2"  # really two processes
    assert hashes[0][1] == hashes[1][1]  # DDP keeps the replicas identical
    before = _state(tiny_lm)
    import hashlib

    h0 = hashlib.sha256(b"".join(v.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                                 for _, v in sorted(before.items()))).hexdigest()
    assert hashes[0][1] != h0  # and they were trained


def test_raw_text_examples_are_not_wrapped_in_the_template():
    """Corpus rows (empty question) train on the text itself, not on 'Question: \\nAnswer: ' + text."""
    from conftest import make_tiny_lm
    from unlearnbench.baselines.llm_loop import _Batches
    from unlearnbench.causal_lm import CausalLM

    model, tok = make_tiny_lm()
    lm = CausalLM(model, tok, template="qa")
    b = _Batches(lm, {"forget": [{"question": "", "answer": "Ava Lund writes poetry."}],
                      "retain": [{"question": "Who?", "answer": "Bo Kerr."}]}, seed=0, need_retain=True)
    ids, labels = b.forget[0]
    assert ids == tok("Ava Lund writes poetry.")["input_ids"] + [tok.eos_token_id]
    assert "Question" not in tok.decode(ids)
    rids, rlabels = b.retain[0]
    assert tok.decode(rids).startswith("<s> Question") or "Question" in tok.decode(rids)
