"""The CausalLM adapter: answer-only log-likelihoods, padding invariance, generation, loading."""

import json

import numpy as np
import pytest
import torch

from conftest import make_tiny_lm
from unlearnbench.batching import run_bucketed
from unlearnbench.causal_lm import CausalLM
from unlearnbench.errors import UserError

PROMPTS = ["Question: What genre does Ava Lund write in Oslo?\nAnswer: ",
           "Question: What genre does Bo Kerr write?\nAnswer: ",
           "Question: Who?\nAnswer: "]
ANSWERS = ["Ava Lund writes mystery in Oslo.", "poetry", "Cy Moss writes horror in Lima, and satire in Perth."]


@pytest.fixture(scope="module")
def lm():
    model, tok = make_tiny_lm(seed=3)
    return CausalLM(model, tok, template="qa", name="tiny", batch_size=8)


def _manual_logprobs(lm, prompt, answer):
    """Direct computation on one unpadded sequence: log p of each answer token (+ EOS)."""
    tok = lm.tokenizer
    n_prompt = len(tok(prompt)["input_ids"])
    ids = tok(prompt + answer)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    return np.array([lp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids))])


def test_loglik_scores_answer_tokens_only_and_matches_manual(lm):
    got = lm.loglik(PROMPTS, ANSWERS)
    for p, a, g in zip(PROMPTS, ANSWERS, got):
        np.testing.assert_allclose(g, _manual_logprobs(lm, p, a), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("bs", [1, 2, 3])
def test_loglik_is_invariant_to_padding_side_and_batch_size(lm, side, bs):
    ref = [_manual_logprobs(lm, p, a) for p, a in zip(PROMPTS, ANSWERS)]
    lm.tokenizer.padding_side, lm.batch_size = side, bs
    try:
        got = lm.loglik(PROMPTS, ANSWERS)
    finally:
        lm.tokenizer.padding_side, lm.batch_size = "right", 8
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_token_stats_mean_and_variance_of_logp(lm):
    out = lm.loglik(PROMPTS[:1], ANSWERS[:1], token_stats=True)[0]
    tok = lm.tokenizer
    n_prompt = len(tok(PROMPTS[0])["input_ids"])
    ids = tok(PROMPTS[0] + ANSWERS[0])["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].double(), -1)[n_prompt - 1:len(ids) - 1]
    p = lp.exp()
    np.testing.assert_allclose(out["mu"], (p * lp).sum(-1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["var"], (p * lp ** 2).sum(-1).numpy() - (p * lp).sum(-1).numpy() ** 2, rtol=1e-3, atol=1e-5)


def test_encode_qa_masks_the_prompt(lm):
    ids, labels = lm.encode_qa(PROMPTS[:1], ["poetry"])
    scored = [t for t in labels[0] if t != -100]
    assert scored == [lm.tokenizer.convert_tokens_to_ids("poetry"), lm.tokenizer.eos_token_id]
    assert len(ids[0]) == len(labels[0])


def test_generation_is_greedy_deterministic_and_batch_invariant(lm):
    lm.generate_batch_size = 3
    a = lm.generate(PROMPTS, max_new_tokens=6)
    lm.generate_batch_size = 1
    b = lm.generate(PROMPTS, max_new_tokens=6)
    lm.generate_batch_size = None
    assert lm.generation_batch() == 4 * lm.batch_size  # the default: 4 x the scoring batch
    assert a == b and all(isinstance(x, str) for x in a)
    tok = lm.tokenizer
    ids = tok(PROMPTS[0])["input_ids"]
    with torch.no_grad():  # manual greedy decoding of the first prompt
        for _ in range(6):
            nxt = int(lm.model(torch.tensor([ids])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            ids.append(nxt)
    assert a[0] == tok.decode(ids[len(tok(PROMPTS[0])["input_ids"]):], skip_special_tokens=True)


def test_save_and_load_round_trip(lm, tmp_path):
    lm.save(tmp_path / "m")
    back = CausalLM.load(str(tmp_path / "m"))
    assert back.template == lm.template and back.dtype_name == "float32"
    for x, y in zip(lm.loglik(PROMPTS, ANSWERS), back.loglik(PROMPTS, ANSWERS)):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    assert back.describe()["weights_sha256"] == CausalLM.load(str(tmp_path / "m")).describe()["weights_sha256"]


def test_peft_adapter_folder_loads_on_its_base(lm, tmp_path):
    from peft import LoraConfig, get_peft_model

    base_dir = tmp_path / "base"
    lm.save(base_dir)
    model, _ = make_tiny_lm(seed=3)
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.peft_config["default"].base_model_name_or_path = str(base_dir)
    peft.save_pretrained(tmp_path / "adapter")
    loaded = CausalLM.load(str(tmp_path / "adapter"), template="qa")
    assert loaded.format == "peft"
    merged = peft.merge_and_unload()
    ref = CausalLM(merged, lm.tokenizer, template="qa").loglik(PROMPTS, ANSWERS)
    for x, y in zip(loaded.loglik(PROMPTS, ANSWERS), ref):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_oom_halves_the_batch_and_keeps_order():
    calls = []

    def fn(batch):
        calls.append(len(batch))
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return [x * 10 for x in batch]

    out, bs = run_bucketed(list(range(7)), [1, 5, 2, 7, 3, 3, 9], fn, batch_size=8)
    assert out == [x * 10 for x in range(7)] and bs <= 2 and calls[0] == 7


def test_other_errors_are_not_swallowed():
    with pytest.raises(ValueError):
        run_bucketed([1, 2], [1, 1], lambda b: (_ for _ in ()).throw(ValueError("boom")), batch_size=2)


@pytest.mark.parametrize("case", ["missing", "empty_dir", "diffusers", "bad_json", "txt_file", "classifier_arch"])
def test_bad_checkpoints_raise_one_line_user_errors(tmp_path, case):
    p = tmp_path / "ck"
    if case == "empty_dir":
        p.mkdir()
    elif case == "diffusers":
        p.mkdir()
        (p / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    elif case == "bad_json":
        p.mkdir()
        (p / "config.json").write_text("{oops")
    elif case == "txt_file":
        p = tmp_path / "weights.txt"
        p.write_text("x")
    elif case == "classifier_arch":
        p.mkdir()
        (p / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"], "model_type": "bert"}))
    with pytest.raises(UserError) as e:
        CausalLM.load(str(p))
    assert "\n" not in str(e.value)


def test_answers_sharing_a_prompt_score_as_whole_sequences(lm):
    """The shared-prompt path (prompt once, answers through its cache) equals scoring each
    sequence whole, token statistics included."""
    import numpy as np

    from unlearnbench import lm_shared_prefix as SP

    prompts = [lm.render(q) for q in ("Who wrote Oslo Nights?", "Where was Ava Lund born?")]
    answers = ["Ava Lund wrote it.", "Bo Kerr.", "Nobody knows who wrote it at all.", "In Lima.", "Pune"]
    ps = [prompts[0]] * 3 + [prompts[1]] * 2
    shared = lm.loglik(ps, answers, token_stats=True)
    encoded = [lm._encode(p, a) for p, a in zip(ps, answers)]
    assert len(SP.groups(encoded, 8)) == 2 and len(SP.groups(encoded, 2)) == 3  # groups capped at 2
    raw = [lm._encode("", t) for t in ("one text", "another text")]
    assert len(SP.groups(raw, 8)) == 2  # no prompt worth sharing: each alone
    whole = lm._forward_logprobs(encoded, True)
    for a, b in zip(shared, whole):
        for k in ("logprobs", "mu", "var"):
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-5)  # float32 rounding
        assert (a["hit"] == b["hit"]).all()


def test_continuous_batching_refills_and_matches_one_at_a_time(lm):
    """Rows finishing at different steps free slots that waiting prompts take over mid-run;
    every answer equals decoding its prompt alone (and the per-row length limits hold)."""
    prompts = (PROMPTS * 3)[:7]
    limits = [1, 6, 2, 5, 3, 6, 4]
    lm.generate_batch_size = 2
    mixed = lm.generate_ids(prompts, limits)
    lm.generate_batch_size = 1
    alone = lm.generate_ids(prompts, limits)
    lm.generate_batch_size = None
    assert mixed == alone
    assert all(len(g) <= n for g, n in zip(mixed, limits))
    assert any(len(g) == n for g, n in zip(mixed, limits))


def test_generation_oom_halves_its_own_batch_not_the_scoring_batch(lm, monkeypatch):
    """Out of memory while decoding halves the generation batch (4 x the scoring batch by
    default) until it fits, keeps it for later calls, and leaves the scoring batch alone."""
    from unlearnbench import lm_generate

    real, seen = lm_generate.greedy, []

    def greedy(*args, batch_size, **kw):
        seen.append(batch_size)
        if batch_size > 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(*args, batch_size=batch_size, **kw)

    monkeypatch.setattr(lm, "batch_size", 4)  # restored after the test, pass or fail
    monkeypatch.setattr(lm, "generate_batch_size", None)
    want = lm.generate(PROMPTS, max_new_tokens=4)
    monkeypatch.setattr(lm_generate, "greedy", greedy)
    got = lm.generate(PROMPTS, max_new_tokens=4)
    assert got == want and seen == [16, 8, 4, 2]
    assert lm.generate_batch_size == 2 and lm.batch_size == 4
    lm.generate(PROMPTS, max_new_tokens=4)
    assert seen[-1] == 2


def test_kv_cache_goes_by_the_keyword_the_model_takes(lm):
    """Newer transformers take the KV cache as ``cache`` and warn on ``past_key_values``; older
    ones know only ``past_key_values``. Scoring and generation use whichever the model's forward
    has, so neither warns."""
    import warnings

    from unlearnbench.lm_shared_prefix import with_cache

    class New:
        def forward(self, input_ids=None, cache=None):
            pass

    class Old:
        def forward(self, input_ids=None, past_key_values=None):
            pass

    assert with_cache(New(), 1) == {"cache": 1} and with_cache(Old(), 1) == {"past_key_values": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm.loglik([PROMPTS[0]] * 2, ANSWERS[:2])
        lm.generate(PROMPTS[:2], max_new_tokens=3)
    assert not [w for w in caught if "past_key_values" in str(w.message)]
