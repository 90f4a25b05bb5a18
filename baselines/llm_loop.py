"""The one shared training loop of every LLM unlearning method.

A method file holds only its loss: a subclass of :class:`LLMMethod` that sets
``needs_ref`` (a frozen copy of the starting model is made for it) and implements
``loss(ctx, batch) -> (loss, logs)``. This loop does everything else, the same way for all
methods:

* data: every step sees a batch of forget examples; each forget example is paired with a
  retain example (a fresh seeded permutation each epoch, TOFU's ``TextForgetDatasetQA``
  pairing) and an "I don't know" answer to the same question (for IdkPO). Examples are
  tokenised with :meth:`CausalLM.encode_qa`, exactly as scoring tokenises them (prompt
  masked with -100, EOS appended as the template says);
* optimisation: AdamW, linear warm-up then linear decay (TOFU's and the NPO code's
  schedule) or a constant lr (``lr_schedule``), gradient clipping (``max_grad_norm``;
  0 turns it off), gradient accumulation, ``epochs`` or ``max_steps``;
* optional LoRA through ``peft`` (merged back into the weights at the end);
* scale-out: the loop is written against ``accelerate.Accelerator``, so it runs unchanged
  single-process on CPU/GPU and under ``accelerate launch`` (DDP; the forget set is
  sharded across processes, each process holds the same weights after every step; the
  effective batch is ``batch_size x grad_accum x processes``). Under FSDP or DeepSpeed
  ZeRO-3 (``benchmark/accelerate_fsdp_7b.yaml``, ``accelerate_zero3_7b.yaml``) the weights
  are gathered on the main process at the end and saved from there, and ``run`` scores the
  saved checkpoint;
* determinism: shuffling, pairing and any method randomness come from generators seeded
  by ``config.seed`` (default: the run's seed), so the same seed gives the same weights and
  another seed other weights. A forget set no larger than one batch (mini-MUSE's 16 articles)
  is drawn with replacement, n examples per epoch: without that, every step and every seed
  would see the same full batch, and the seeds of a table would be one run.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from typing import Any

from unlearnbench.errors import UserError


@dataclass
class LoopConfig:
    """Fields shared by every LLM method's ``Config``. The defaults are the published 7B
    recipes' (TOFU, NPO, SimNPO, IdkPO: lr 1e-5, effective batch 32); each method overrides what
    its paper sets differently, and embedded-world tasks carry their own values
    (:func:`unlearnbench.unlearning.task_defaults`)."""

    epochs: int = 5                # passes over the forget set (TOFU unlearning: 5)
    max_steps: int | None = None   # stop after this many optimizer steps (overrides epochs)
    lr: float = 1e-5               # TOFU / NPO / SimNPO / IdkPO use 1e-5 on 7B models
    batch_size: int = 8            # forget examples per process per micro-batch
    grad_accum: int = 4            # micro-batches per optimizer step (8 x 4 = the papers' batch 32)
    warmup_ratio: float = 0.1      # share of the steps with linear warm-up (TOFU: one epoch of 5)
    lr_schedule: str = "linear"    # after warm-up: "linear" decay to 0 (TOFU, NPO) or "constant" (RMU)
    weight_decay: float = 0.01     # TOFU's AdamW weight decay
    max_grad_norm: float = 1.0     # gradient clipping
    lora_r: int = 0                # > 0: train a LoRA adapter of this rank instead of all weights
    lora_alpha: int = 32           # TOFU's LoRA alpha
    lora_dropout: float = 0.05     # TOFU's LoRA dropout
    seed: int | None = None        # None: the run's seed (``unlearn --seed``)


@dataclass
class Context:
    """What a method's loss sees: the (wrapped) model being trained and the frozen reference."""

    model: Any
    ref_model: Any
    config: Any
    accelerator: Any
    state: dict  # per-run method state (RMU's control vector ...)


class LLMMethod:
    """Base class of LLM unlearning methods; subclasses define ``Config`` and ``loss``."""

    name = ""
    modality = "llm"
    needs_ref = False  # a frozen copy of the starting model is passed as ``ctx.ref_model``
    needs_retain = True  # the method's loss uses the retain batch
    Config = LoopConfig

    def loss(self, ctx: Context, batch: dict) -> tuple[Any, dict]:
        raise NotImplementedError

    def trainable_parameters(self, model, config) -> list | None:
        """Parameters to update (None: all). Others get ``requires_grad=False``: bit-identical."""
        return None

    def setup(self, ctx: Context) -> None:
        """Called once before training (e.g. draw RMU's random control vector)."""

    def unlearn(self, model, task, config, *, data: dict, progress: bool = True):
        return train(self, model, data, config, progress=progress)


# -- helpers shared by the method files ----------------------------------------------------
def forward(model, part: dict, **kw):
    return model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], **kw)


def seq_logprob(model, part: dict):
    from unlearnbench.baselines.llm_losses import sequence_logprob

    return sequence_logprob(forward(model, part).logits, part["labels"])


def retain_nll(ctx: Context, batch: dict):
    from unlearnbench.baselines.llm_losses import nll

    return nll(forward(ctx.model, batch["retain"]).logits, batch["retain"]["labels"])


def retain_kl(ctx: Context, batch: dict):
    import torch

    from unlearnbench.baselines.llm_losses import kl_on_answers

    with torch.no_grad():
        ref_logits = forward(ctx.ref_model, batch["retain"]).logits
    return kl_on_answers(forward(ctx.model, batch["retain"]).logits, ref_logits, batch["retain"]["labels"])


# -- data ----------------------------------------------------------------------------------
def _prompt(lm, row: dict) -> str:
    """The prompt of a training example: the template around the question, or nothing for raw
    text (MUSE / WMDP corpora come as ``{"question": "", "answer": text}``), so a corpus is
    never wrapped in ``"Question: \nAnswer: "`` whatever the model's template."""
    return lm.render(row["question"]) if row.get("question") else ""


class _Batches:
    """Turns a list of forget indices into padded forget / retain / idk tensors."""

    def __init__(self, lm, data: dict, seed: int, need_retain: bool):
        forget = data.get("forget") or []
        if not forget:
            raise UserError("the task gave no forget examples to unlearn")
        self.lm, self.seed = lm, seed
        prompts = [_prompt(lm, r) for r in forget]
        self.forget = list(zip(*lm.encode_qa(prompts, [r["answer"] for r in forget])))
        self.prompts = prompts
        retain = data.get("retain") or []
        if need_retain and not retain:
            raise UserError("this method needs a retain set, and the task gave none")
        self.retain = list(zip(*lm.encode_qa([_prompt(lm, r) for r in retain],
                                             [r["answer"] for r in retain]))) if retain else []
        self.idk = list(data.get("idk") or ["I don't know."])
        self._idk_cache: dict = {}
        self.epoch = 0
        self._perm: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.retain:
            self._perm = list(range(len(self.retain)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(self._perm)

    def _idk(self, i: int):
        j = random.Random((self.seed * 1_000_003 + self.epoch) * 7919 + i).randrange(len(self.idk))
        key = (i, j)
        if key not in self._idk_cache:
            ids, labels = self.lm.encode_qa([self.prompts[i]], [self.idk[j]])
            self._idk_cache[key] = (ids[0], labels[0])
        return self._idk_cache[key]

    def __call__(self, idx: list[int]) -> dict:
        from unlearnbench.tasks.mini_tofu_models import pad_batch

        pad = self.lm.tokenizer.pad_token_id
        idx = [int(i) for i in idx]
        out = {"index": idx, "forget": pad_batch(*zip(*[self.forget[i] for i in idx]), pad)}
        if self.retain:
            out["retain"] = pad_batch(*zip(*[self.retain[self._perm[i % len(self._perm)]] for i in idx]), pad)
        out["idk"] = pad_batch(*zip(*[self._idk(i) for i in idx]), pad)
        return out


# -- the loop --------------------------------------------------------------------------------
def train(method: LLMMethod, lm, data: dict, config, *, progress: bool = True):
    """Unlearn ``lm`` (a CausalLM) with ``method``'s loss; returns a new CausalLM."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from unlearnbench.causal_lm import CausalLM

    _check_config(config)
    seed = torch.initial_seed() % (2**31) if config.seed is None else int(config.seed)
    acc = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=lm.device.type == "cpu")
    batches = _Batches(lm, data, seed, need_retain=method.needs_retain)

    model = lm.model
    ref = None
    if method.needs_ref:
        ref = copy.deepcopy(model).eval().to(acc.device)
        for p in ref.parameters():
            p.requires_grad_(False)
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 lora_dropout=config.lora_dropout, task_type="CAUSAL_LM",
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    chosen = method.trainable_parameters(model, config)
    if chosen is not None:
        keep = {id(p) for p in chosen}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    gen = torch.Generator().manual_seed(seed)
    n = len(batches.forget)
    # A forget set that fits in one batch would give the same full-batch gradient at every step
    # for every seed (shuffling inside a batch changes nothing): draw its batches with
    # replacement instead (n draws per epoch, a bootstrap of the set), so the seed decides
    # which examples each step weights, as mini-batch sampling does on a larger set.
    sampler = torch.utils.data.RandomSampler(range(n), replacement=n <= config.batch_size, num_samples=n,
                                             generator=gen)
    loader = torch.utils.data.DataLoader(list(range(n)), batch_size=config.batch_size, sampler=sampler,
                                         generator=gen, collate_fn=batches)  # accelerate reseeds through it
    model.train()
    model, opt, loader = acc.prepare(model, opt, loader)
    steps_per_epoch = max(1, math.ceil(len(loader) / config.grad_accum))
    total = config.max_steps or steps_per_epoch * config.epochs
    n_warm = int(config.warmup_ratio * total)
    decay = config.lr_schedule == "linear"
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt.optimizer if hasattr(opt, "optimizer") else opt,
        lambda s: (s + 1) / (n_warm + 1) if s < n_warm
        else max(0.0, (total - s) / max(1, total - n_warm)) if decay else 1.0)

    ctx = Context(model=model, ref_model=ref, config=config, accelerator=acc, state={"seed": seed})
    method.setup(ctx)
    bar = tqdm(total=total, desc=f"unlearning ({method.name})", unit="step", leave=False,
               disable=not progress or not acc.is_local_main_process)
    step, epoch, history = 0, 0, []
    while step < total:
        batches.set_epoch(epoch)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        for batch in loader:
            with acc.accumulate(model):
                loss, logs = method.loss(ctx, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{method.name}: the loss became {loss.item()} at step {step}")
                acc.backward(loss)
                if acc.sync_gradients and config.max_grad_norm:
                    acc.clip_grad_norm_(params, config.max_grad_norm)
                opt.step()
                opt.zero_grad(set_to_none=True)
            if acc.sync_gradients:
                sched.step()
                step += 1
                history.append({"step": step, "loss": loss.item(), **{k: float(v) for k, v in logs.items()}})
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if step >= total:
                    break
        epoch += 1
    bar.close()
    acc.wait_for_everyone()
    full_state = _gathered_state(acc, model)
    model = acc.unwrap_model(model)
    if config.lora_r > 0:
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    out = CausalLM(model, lm.tokenizer, template=lm.template, name=f"{lm.name}+{method.name}", source=lm.source,
                   batch_size=lm.batch_size)
    out.batch_size_source = getattr(lm, "batch_size_source", None)
    out.train_history = history
    if full_state is not None:  # FSDP / ZeRO-3: each process holds a shard; save the gathered weights
        out.full_state_dict, out.sharded = full_state, True
    return out


def _gathered_state(acc, model):
    """The full state dict of a model whose weights are sharded over processes (FSDP, DeepSpeed
    ZeRO-3), gathered on the main process by ``Accelerator.get_state_dict`` (a collective call:
    every process makes it); None for DDP or one process, whose weights are whole everywhere."""
    from accelerate.utils import DistributedType

    if acc.distributed_type not in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return None
    return acc.get_state_dict(model)


def _check_config(config) -> None:
    if config.epochs < 1 and not config.max_steps:
        raise UserError("epochs must be >= 1 (or set max_steps)")
    for field in ("batch_size", "grad_accum"):
        if getattr(config, field) < 1:
            raise UserError(f"{field} must be >= 1, got {getattr(config, field)}")
    if config.lr <= 0:
        raise UserError(f"lr must be > 0, got {config.lr}")
    if config.lr_schedule not in ("linear", "constant"):
        raise UserError(f"lr_schedule must be 'linear' or 'constant', got {config.lr_schedule!r}")
    if config.max_steps is not None and config.max_steps < 1:
        raise UserError(f"max_steps must be >= 1, got {config.max_steps}")
