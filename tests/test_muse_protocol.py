"""The MUSE protocol on a local fixture in muse-bench/MUSE-News's schema, with a tiny random Llama."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from unlearnbench.errors import UserError

TOWNS = ["Velmora", "Quillby", "Darnholt", "Ostrava", "Pellwick", "Marrow"]
THINGS = ["bridge", "library", "harbour", "school", "market", "tunnel"]
NAMES = ["Ilsa Brandt", "Oren Vale", "Tam Quist", "Nia Roth", "Per Lund", "Ada Kerr"]


def _article(rng: random.Random) -> str:
    t, th, n = rng.choice(TOWNS), rng.choice(THINGS), rng.choice(NAMES)
    return (f"In {t} the council approved a new {th} . Mayor {n} said work starts in spring . "
            f"The {th} will cost {rng.randint(2, 90)} million crowns . Residents of {t} welcomed the news .")


def _qa(rng: random.Random) -> dict:
    t, n = rng.choice(TOWNS), rng.choice(NAMES)
    return {"question": f"Who is the mayor of {t} ?", "answer": f"Mayor {n} ."}


def write_muse_fixture(folder: Path, seed: int = 0) -> Path:
    rng = random.Random(seed)
    files = {
        "verbmem/forget": [{"prompt": " ".join(a.split()[:9]), "gt": " ".join(a.split()[9:])}
                           for a in (_article(rng) for _ in range(5))],
        "knowmem/forget_qa": [_qa(rng) for _ in range(4)], "knowmem/forget_qa_icl": [_qa(rng) for _ in range(2)],
        "knowmem/retain_qa": [_qa(rng) for _ in range(4)], "knowmem/retain_qa_icl": [_qa(rng) for _ in range(2)],
        "privleak/forget": [{"text": _article(rng)} for _ in range(6)],
        "privleak/holdout": [{"text": _article(rng)} for _ in range(5)],
        "privleak/retain": [{"text": _article(rng)} for _ in range(3)],
        "raw/forget": [{"text": _article(rng)} for _ in range(4)],
        "raw/retain1": [{"text": _article(rng)} for _ in range(3)],
        "raw/retain2": [{"text": _article(rng)} for _ in range(3)],
        "raw/holdout": [{"text": _article(rng)} for _ in range(3)],
    }
    for k in range(1, 5):
        files[f"scal/forget_{k}"] = [{"text": _article(rng)} for _ in range(k)]
        files[f"sust/forget_{k}"] = [{"text": _article(rng)} for _ in range(2)]
    for name, rows in files.items():
        f = folder / f"{name}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(rows))
    return folder


def tiny_lm(seed: int = 0):
    """A random LlamaForCausalLM over a word-level vocabulary of the fixture, as a CausalLM."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from unlearnbench.causal_lm import CausalLM

    words = TOWNS + THINGS + " ".join(NAMES).split() + [str(i) for i in range(100)] + (
        "In the council approved a new . Mayor said work starts in spring The will cost million crowns Residents "
        "of welcomed news Who is mayor ? Question : Answer A B C D following are multiple choice questions "
        "( with answers ) about biology cybersecurity college x").split()
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "<s>", "</s>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    return CausalLM(LlamaForCausalLM(cfg), fast, template="qa", name=f"tiny-{seed}")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from unlearnbench.registry import TASKS
    from unlearnbench.runner import get_task

    folder = write_muse_fixture(tmp_path_factory.mktemp("muse_news"))
    name = "test-muse/news"
    if name not in TASKS:
        base = get_task("muse/news")
        TASKS.register(name, base.replace(name=name, source={"kind": "local", "path": str(folder)},
                                          settings={**base.settings, "verbmem_max_new_tokens": 6,
                                                    "knowmem_max_new_tokens": 4}),
                       modality="llm", version=1, description="MUSE schema fixture (tests)")
    return get_task(name)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(0)


@pytest.fixture(scope="module")
def rows(task, lm):
    from unlearnbench.runner import get_protocol

    return get_protocol(task).infer(task, lm, progress=False)


def test_rows_cover_every_split(rows):
    counts = {}
    for r in rows:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    assert counts == {"verbmem_forget": 5, "knowmem_forget": 4, "knowmem_retain": 4,
                      "privleak_forget": 6, "privleak_holdout": 5}
    json.dumps(rows)  # JSON-able


def test_privleak_scores_match_an_independent_forward_pass(task, lm, rows):
    """Loss, Min-K% and Min-K%++ recomputed from the raw model's logits over BOS + text (MUSE compute_ppl)."""
    import torch

    from unlearnbench.metrics.mia import min_k_plus_plus_score, min_k_score
    from unlearnbench.tasks.muse import load_rows

    texts = [d["text"] for d in load_rows(task, "privleak_forget")]
    for r in (r for r in rows if r["split"] == "privleak_forget"):
        ids = lm.tokenizer(texts[r["index"]], return_tensors="pt")["input_ids"]
        assert ids[0, 0].item() == lm.tokenizer.bos_token_id
        with torch.no_grad():
            logits = lm.model(ids).logits[0, :-1].double()
        logp = torch.log_softmax(logits, -1)
        lp = logp.gather(-1, ids[0, 1:, None]).squeeze(-1).numpy()
        p = logp.exp()
        mu = (p * logp).sum(-1).numpy()
        var = (p * (logp - torch.tensor(mu)[:, None]) ** 2).sum(-1).numpy()
        assert r["n_tokens"] == len(lp)
        assert r["mia_loss"] == pytest.approx(-lp.mean(), rel=1e-4)
        assert r["mia_min_k"] == pytest.approx(min_k_score(lp, 0.4), rel=1e-4)
        assert r["mia_min_k_plus_plus"] == pytest.approx(min_k_plus_plus_score(lp, mu, var, 0.4), rel=1e-3, abs=1e-4)


def test_verbmem_reference_is_truncated_like_muse(task, lm, rows):
    from unlearnbench.tasks.muse import load_rows

    gt = load_rows(task, "verbmem")[0]["gt"]
    ref = next(r for r in rows if r["split"] == "verbmem_forget" and r["index"] == 0)["reference"]
    ids = lm.tokenizer(gt)["input_ids"][:6]  # BOS + 5 words
    assert ref == lm.tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ref.split()) == 5


def test_template_restored_after_inference(lm, rows):
    assert lm.template.name == "qa"


def test_aggregate_without_and_with_reference(task, lm, rows):
    from unlearnbench.metrics.mia import mia_auc
    from unlearnbench.metrics.muse import privleak, rouge_l_f1
    from unlearnbench.runner import get_protocol

    proto = get_protocol(task)
    m = proto.aggregate(task, rows, None)
    assert {"forget/verbmem", "forget/knowmem", "retain/knowmem", "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus"} <= set(m)
    assert "privleak" not in m and "mia_reference" not in m  # never guessed without the reference
    vm = [r for r in rows if r["split"] == "verbmem_forget"]
    assert m["forget/verbmem"]["value"] == pytest.approx(np.mean(rouge_l_f1([r["generation"] for r in vm],
                                                                      [r["reference"] for r in vm])))
    f = [r["mia_min_k"] for r in rows if r["split"] == "privleak_forget"]
    h = [r["mia_min_k"] for r in rows if r["split"] == "privleak_holdout"]
    assert m["mia_min_k"]["value"] == pytest.approx(mia_auc(f, h))

    # the model as its own reference: PrivLeak 0, reference attack at chance (all differences tie)
    own = proto.aggregate(task, rows, proto.reference_payload(task, rows))
    assert own["privleak"]["value"] == pytest.approx(0.0)
    assert own["mia_reference"]["value"] == pytest.approx(0.5)

    # another model's reference (its per-sample scores shifted: a different membership signal)
    rng = np.random.default_rng(0)
    other = [dict(r, **{a: r[a] + rng.normal(0, 1) for a in ("mia_loss", "mia_min_k")}) if r["split"].startswith("privleak")
             else r for r in rows]
    payload = json.loads(json.dumps(proto.reference_payload(task, other)))  # survives JSON
    assert payload["auc"]["mia_min_k"] != pytest.approx(m["mia_min_k"]["value"])
    m2 = proto.aggregate(task, rows, payload)
    assert m2["privleak"]["value"] == pytest.approx(privleak(m["mia_min_k"]["value"], payload["auc"]["mia_min_k"]))
    assert m2["privleak_gap"]["value"] == pytest.approx(abs(m2["privleak"]["value"]))

    with pytest.raises(UserError):
        proto.aggregate(task, rows, {"auc": {}, "rows": []})
    bad = dict(payload, rows=[r for r in payload["rows"] if r["index"] != 0])
    with pytest.raises(UserError):
        proto.aggregate(task, rows, bad)


def test_training_data_and_variants(task):
    from unlearnbench.runner import get_protocol
    from unlearnbench.tasks.muse import chunk_text, variants

    proto = get_protocol(task)
    data = proto.training_data(task)
    assert len(data["forget"]) == 4 and len(data["retain"]) == 3
    assert all(d["question"] == "" and d["answer"] for d in data["forget"] + data["retain"])
    names = [v.name for v in variants(task)]
    assert names[:2] == ["test-muse/news-scal-1", "test-muse/news-scal-2"] and names[-1] == "test-muse/news-sust-4"
    sizes = [len(proto.training_data(v)["forget"]) for v in variants(task)]
    assert sizes == [1, 2, 3, 4, 2, 2, 2, 2]
    ids = {json.dumps(proto.training_data(v)["forget_id"]) for v in variants(task)}
    assert len(ids) == 8
    text = "word " * 50
    chunks = chunk_text(text, 32)
    assert all(len(c) <= 32 for c in chunks) and " ".join(chunks) == text.strip()


def test_registered_real_tasks():
    from unlearnbench.runner import get_task

    news = get_task("muse/news")
    assert news.source == {"kind": "hub", "path": "muse-bench/MUSE-News"}
    assert news.splits["verbmem"] == "verbmem/forget" and news.splits["privleak_holdout"] == "privleak/holdout"
    assert get_task("muse/books").source["path"] == "muse-bench/MUSE-Books"
    assert get_task("muse/news-sust-3").splits["forget_train"] == "sust/forget_3"
    assert get_task("muse/news-scal-2").splits["forget_train"] == "scal/forget_2"


def test_schema_errors(tmp_path, task):
    from unlearnbench.tasks.muse import load_rows

    (tmp_path / "verbmem").mkdir()
    (tmp_path / "verbmem" / "forget.json").write_text(json.dumps([{"prompt": "x"}]))
    bad = task.replace(source={"kind": "local", "path": str(tmp_path)})
    with pytest.raises(UserError, match="gt"):
        load_rows(bad, "verbmem")
    with pytest.raises(UserError, match="not found"):
        load_rows(bad, "privleak_forget")
    with pytest.raises(UserError, match="config/split"):
        load_rows(task.replace(splits={"verbmem": "forget"}), "verbmem")


@pytest.mark.slow
def test_score_and_reference_through_the_runner(task, lm, tmp_path):
    """The engine path: build_reference from a saved model folder, then score with it."""
    from unlearnbench.results import load_result
    from unlearnbench.runner import build_reference, score

    ckpt = tmp_path / "retrained"
    tiny_lm(1).save(ckpt)
    info = build_reference(task.name, str(ckpt), tmp_path / "ref.json", progress=False, role="retrain")
    out = score(task.name, "in-memory", model=lm, reference=info["path"], out_dir=tmp_path / "res", progress=False)
    res = load_result(out.path)
    assert res["references"][0]["sha256"] == info["sha256"]
    assert "privleak" in res["metrics"] and res["task"]["data_sha256"]
