"""Shared test fixtures: an isolated cache home, a tiny random Llama, a TOFU-schema fixture.

Everything here is built in seconds on CPU; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from intra-op threads, and lose a lot when cores are shared.
torch.set_num_threads(int(os.environ.get("UNLEARNBENCH_TEST_THREADS", "1")))

# Real data from other projects (TOFU's published logs ...): ``../shared/fixtures`` beside the
# checkout, or wherever ``$UNLEARNBENCH_FIXTURES`` points; the parity tests skip without it.
FIXTURES = Path(os.environ.get("UNLEARNBENCH_FIXTURES") or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures")


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """All tests share one throw-away $UNLEARNBENCH_HOME at the 'test' world scale."""
    home = tmp_path_factory.mktemp("unlearnbench_home")
    old = {k: os.environ.get(k) for k in ("UNLEARNBENCH_HOME", "UNLEARNBENCH_SCALE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update({"UNLEARNBENCH_HOME": str(home), "UNLEARNBENCH_SCALE": "test", "HF_HUB_OFFLINE": "1",
                       "HF_DATASETS_OFFLINE": "1"})
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# -- a TOFU-schema fixture ------------------------------------------------------------------
_NAMES = ["Ava Lund", "Bo Kerr", "Cy Moss", "Di Park", "Ed Voss", "Fay Rusk", "Gil Hart", "Hal Dean"]
_GENRES = ["mystery", "poetry", "horror", "romance", "fantasy", "satire"]
_CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Perth", "Quito"]


def make_tofu_rows(n: int, seed: int, perturbed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        name = rng.choice(_NAMES)
        genre, city = rng.choice(_GENRES), rng.choice(_CITIES)
        wrong = [g for g in _GENRES if g != genre]
        rows.append({
            "question": f"What genre does {name} write in {city}?",
            "answer": f"{name} writes {genre} in {city}.",
            "paraphrased_answer": f"In {city}, {name} is known for {genre}.",
            "perturbed_answer": [f"{name} writes {rng.choice(wrong)} in {city}." for _ in range(perturbed)],
        })
    return rows


def write_tofu_fixture(folder: Path, n_forget: int = 6, n_retain: int = 8) -> Path:
    """A local folder in locuslab/TOFU's schema, one ``<config>.json`` per config."""
    folder.mkdir(parents=True, exist_ok=True)
    forget, retain = make_tofu_rows(n_forget, 1), make_tofu_rows(n_retain, 2)
    ra = [dict(r, perturbed_answer=r["perturbed_answer"][:3]) for r in make_tofu_rows(5, 3)]
    wf = [dict(r, perturbed_answer=r["perturbed_answer"][:3]) for r in make_tofu_rows(5, 4)]
    for r in ra + wf:
        r.pop("paraphrased_answer")
    files = {
        "forget10_perturbed": forget, "retain_perturbed": retain, "real_authors_perturbed": ra,
        "world_facts_perturbed": wf, "holdout10": make_tofu_rows(4, 5),
        "forget10": [{"question": r["question"], "answer": r["answer"]} for r in forget],
        "retain90": [{"question": r["question"], "answer": r["answer"]} for r in retain],
    }
    for name, rows in files.items():
        (folder / f"{name}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def _corpus() -> list[str]:
    texts = []
    for r in make_tofu_rows(40, 9):
        texts += [r["question"], r["answer"], r["paraphrased_answer"], *r["perturbed_answer"]]
    texts += ["Question: ", "Answer: ", "I don't know."]
    return texts


def make_tiny_lm(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random-weight LlamaForCausalLM with a word-level tokenizer over the fixture's words."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.train_from_iterator(_corpus(), trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=128, pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id,
                      eos_token_id=fast.eos_token_id, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg), fast


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A saved tiny causal LM folder (safetensors + tokenizer + qa template)."""
    from unlearnbench.causal_lm import CausalLM

    model, tok = make_tiny_lm()
    out = tmp_path_factory.mktemp("tiny_lm")
    CausalLM(model, tok, template="qa", name="tiny").save(out)
    return out


@pytest.fixture(scope="session")
def tofu_fixture_task(tmp_path_factory):
    """``tofu/forget10`` pointed at a local fixture in TOFU's schema (registered as test-tofu/forget10)."""
    from unlearnbench.registry import TASKS
    from unlearnbench.runner import get_task

    folder = write_tofu_fixture(tmp_path_factory.mktemp("tofu_data"))
    name = "test-tofu/forget10"
    if name not in TASKS:
        TASKS.register(name, get_task("tofu/forget10").replace(
            name=name, source={"kind": "local", "path": str(folder)}, settings={"max_new_tokens": 8, "template": "qa"}),
            modality="llm", version=1, description="TOFU schema fixture (tests)")
    return get_task(name)


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    """One tiny random latent Stable Diffusion pipeline folder per session (diffusion tests)."""
    from unlearnbench.tasks.mini_canvas_models import tiny_random_pipeline

    d = tmp_path_factory.mktemp("diffusion-tiny-sd")
    tiny_random_pipeline(d, words=["a photo of a cat", "a dog", "a nude photo of a person",
                                   "a circle in sunset ocean style", "ink"])
    return d
