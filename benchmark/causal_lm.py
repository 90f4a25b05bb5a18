"""The ``CausalLM`` adapter: per-token log-likelihood of answers, and greedy generation.

Loads a Hugging Face folder or hub id, a PEFT adapter folder (on its base model), or a GGUF
file; ``trust_remote_code`` is always off and weights load from safetensors (or, for old
``.bin`` folders, through transformers' ``weights_only`` loader). Every log-likelihood call
tokenises ``prompt + answer`` in one piece and scores only the tokens that overlap the
answer's characters (TOFU masks the question tokens the same way), plus one EOS token when
the template says so. Batches are length-bucketed; explicit ``position_ids`` make the
numbers the same under left or right padding; the batch size halves itself on OOM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from unlearnbench import distributed
from unlearnbench.batching import run_bucketed
from unlearnbench.errors import UserError
from unlearnbench import lm_encoding
from unlearnbench import lm_shared_prefix as SP
from unlearnbench.lm_encoding import Encoding, decode, encode, key_mask
from unlearnbench.results import weights_sha256
from unlearnbench.templates import PromptTemplate, get_template

TEMPLATE_FILE = "unlearnbench_template.json"
# Greedy decoding keeps up to this many times the scoring batch in flight. One decoding step
# reads every weight once for the whole batch, so on a CPU it is bound by memory bandwidth:
# on SmolLM2-135M (fp32, 2 threads, 150-token prompts; tests/perf/decode_batch.py) a step
# costs 142 ms for 16 rows, 389 ms for 64 and 642 ms for 96: 8.8 / 6.1 / 6.7 ms per generated
# token. The KV cache grows with it (SmolLM2: 46 kB per token); out of memory halves it as
# for scoring.
GENERATE_BATCH_FACTOR = 4


def default_device(device: str | None = None) -> str:
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {device!r} requested but CUDA is not available")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str, dtype: str | None = None) -> str:
    """float32 on CPU (bf16 matmuls are ~100x slower on AVX2 CPUs), bfloat16 on GPU."""
    if dtype:
        return dtype
    return "float32" if device == "cpu" else "bfloat16"


class CausalLM:
    """A causal language model with its tokenizer and prompt template."""

    modality = "llm"

    def __init__(self, model, tokenizer, *, template: PromptTemplate | str | None = None, name: str | None = None,
                 source: str | None = None, fmt: str = "memory", weights_hash: str | None = None,
                 batch_size: int | None = None):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.template = template if isinstance(template, PromptTemplate) else get_template(template, tokenizer)
        self.name = name or getattr(model.config, "_name_or_path", None) or "model"
        self.source = source
        self.format = fmt
        self._weights_hash = weights_hash
        self.batch_size = batch_size or 16
        self.generate_batch_size: int | None = None  # None: GENERATE_BATCH_FACTOR x batch_size
        self.encoding = Encoding()
        self.model.eval()
        p = next(model.parameters())
        self.device = p.device
        self.device_name = str(p.device)
        self.dtype_name = str(p.dtype).replace("torch.", "")
        self._torch = torch

    # -- loading --------------------------------------------------------------------
    @classmethod
    def load(cls, path: str, *, device: str | None = None, dtype: str | None = None, batch_size: int | None = None,
             template: str | None = None, task: Any = None) -> "CausalLM":
        """Load a folder, GGUF file or hub id; a broken checkpoint fails in one line
        (:mod:`unlearnbench.llm_checks`), a local path is never mistaken for a hub id
        (:mod:`unlearnbench.hub`)."""
        import pickle
        import struct

        import torch
        import transformers
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from unlearnbench import hub, llm_checks
        from unlearnbench.progress import silence_libraries

        transformers.logging.set_verbosity_error()
        silence_libraries()
        dev = default_device(device)
        dt = default_dtype(dev, dtype)
        torch_dtype = getattr(torch, dt)
        p = Path(path)
        kw = {"trust_remote_code": False}
        fmt, saved_template, weights_hash, info = "hf", None, None, None
        try:
            if p.is_file():
                if p.suffix != ".gguf":
                    raise UserError(f"unsupported LLM checkpoint file {p}: expected a model folder or a .gguf file")
                fmt = "gguf"
                tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name, **kw)
                model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch_dtype, **kw)
                weights_hash = weights_sha256(p)
            elif p.is_dir():
                saved_template = llm_checks.read_template_file(p / TEMPLATE_FILE)
                if (p / "adapter_config.json").exists():
                    fmt = "peft"
                    llm_checks.check_weight_files(p)
                    model, tok = cls._load_peft(p, torch_dtype, kw)
                elif (p / "config.json").exists():
                    _check_causal_config(p)
                    llm_checks.check_shapes(p, llm_checks.check_weight_files(p))
                    tok = AutoTokenizer.from_pretrained(str(p), **kw)
                    model, info = AutoModelForCausalLM.from_pretrained(str(p), dtype=torch_dtype, output_loading_info=True,
                                                                       **kw)
                else:
                    raise UserError(f"{p} is not a model folder (no config.json or adapter_config.json)")
                weights_hash = weights_sha256(p)
            else:
                hub.require_local_or_hub(path)
                fmt = "hub"
                tok = AutoTokenizer.from_pretrained(path, **kw)
                model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, output_loading_info=True, **kw)
                weights_hash = _hub_revision(model)
        except UserError:
            raise
        except (OSError, ValueError, KeyError, IndexError, RuntimeError, TypeError, EOFError, struct.error,
                json.JSONDecodeError, pickle.UnpicklingError, SafetensorError) as e:  # a broken or truncated file
            raise llm_checks.load_error(e, path) from None
        llm_checks.check_loaded(model, tok, info, str(path))
        model.to(dev)
        if template is None:
            if saved_template is not None:
                template = saved_template
            elif task is not None and task.settings.get("template"):
                t = task.settings["template"]  # a name, or a profile's full template
                template = PromptTemplate(**t) if isinstance(t, dict) else t
        auto = batch_size == "auto"
        lm = cls(model, tok, template=template, name=p.name if p.exists() else path, source=str(path), fmt=fmt,
                 weights_hash=weights_hash, batch_size=None if auto else batch_size)
        if lm.template.chat and not getattr(tok, "chat_template", None):  # else it fails at the first prompt
            raise UserError(f"template {lm.template.name!r} uses the tokenizer's chat template, and {path} has none "
                            "(use --template qa, llama2 or raw)")
        if auto:  # the largest batch that fits, searched once per (model, device) (unlearnbench.auto_batch)
            from unlearnbench import auto_batch

            lm.batch_size, lm.batch_size_source = auto_batch.resolve(
                weights_hash or lm.name, lm.device, dt, auto_batch.causal_lm_probe(lm), default=lm.batch_size)
        return lm

    @staticmethod
    def _load_peft(p: Path, torch_dtype, kw):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = json.loads((p / "adapter_config.json").read_text())
        base = cfg.get("base_model_name_or_path")
        if not base:
            raise UserError(f"{p}/adapter_config.json names no base_model_name_or_path")
        if not Path(base).exists() and (p / base).exists():
            base = str(p / base)
        from unlearnbench import hub

        hub.require_local_or_hub(base, f"base model of adapter {p}")
        tok_src = str(p) if (p / "tokenizer_config.json").exists() else base
        tok = AutoTokenizer.from_pretrained(tok_src, **kw)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, **kw)
        model = PeftModel.from_pretrained(model, str(p)).merge_and_unload()
        return model, tok

    # -- tokenisation ---------------------------------------------------------------
    def use_settings(self, settings) -> "CausalLM":
        """Apply a task's scoring settings (``unlearnbench.profiles``): a fixed prompt template
        (``template`` as a dict), a ``system_prompt`` and the ``encoding`` (label span,
        attention mask, decoding)."""
        import dataclasses

        tpl = settings.get("template")
        if isinstance(tpl, dict):
            self.template = PromptTemplate(**tpl)
        if settings.get("system_prompt") is not None:
            if not self.template.chat:
                raise UserError(f"a system prompt needs a chat template; the prompt template is {self.template.name!r}")
            self.template = dataclasses.replace(self.template, system=settings["system_prompt"])
        if settings.get("encoding"):
            self.encoding = Encoding(**settings["encoding"])
        return self

    def _encode(self, prompt: str, answer: str) -> tuple[list[int], list[int]]:
        """Token ids of ``prompt+answer`` and labels (-100 where not scored)."""
        return encode(self.tokenizer, self.template, self.encoding, prompt, answer)

    def scored_text(self, prompt: str, answer: str) -> str:
        return lm_encoding.scored_text(self.tokenizer, self.template, self.encoding, prompt, answer)

    def reference_text(self, prompt: str, answer: str) -> str:
        return lm_encoding.reference_text(self.tokenizer, self.template, self.encoding, prompt, answer)

    def prompt_lengths(self, prompts: Sequence[str]) -> list[int]:
        special = not self.template.chat
        return [len(self.tokenizer(p, add_special_tokens=special)["input_ids"]) for p in prompts]

    def encode_qa(self, prompts: Sequence[str], answers: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids and labels (prompt masked with -100) exactly as scoring tokenises them."""
        pairs = [self._encode(p, a) for p, a in zip(prompts, answers)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def render(self, question: str) -> str:
        return self.template.render(question, self.tokenizer)

    # -- scoring --------------------------------------------------------------------
    def _pad(self, seqs: list[list[int]], value: int, left: bool):
        torch = self._torch
        n = max(len(s) for s in seqs)
        rows = [([value] * (n - len(s)) + s) if left else (s + [value] * (n - len(s))) for s in seqs]
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    def _forward_logprobs(self, batch: list[tuple[list[int], list[int]]], token_stats: bool):
        torch = self._torch
        # Left padding puts every answer at the right end, so the output layer runs only on the
        # last columns that hold answer tokens (``logits_to_keep``); explicit positions keep the
        # numbers those of each sequence alone.
        pad = self.tokenizer.pad_token_id
        ids = self._pad([b[0] for b in batch], pad, True)
        labels = self._pad([b[1] for b in batch], -100, True)
        real = self._pad([[1] * len(b[0]) for b in batch], 0, True)
        mask = self._pad([key_mask(b[0], self.encoding, pad) for b in batch], 0, True)
        pos = (real.cumsum(-1) - 1).clamp(min=0)  # each token's index in its own sequence
        first = int((labels != -100).any(0).nonzero()[0]) if (labels != -100).any() else 1
        keep = ids.shape[1] - max(first, 1) + 1
        kw = {"logits_to_keep": keep} if self._keeps_logits() else {}
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw).logits
            labels = labels[:, ids.shape[1] - logits.shape[1]:]
            return self._logprobs_from(logits[:, :-1], labels[:, 1:], token_stats)

    def _logprobs_from(self, logits, tgt, token_stats: bool) -> list:
        """Per-row results from logits ``(B, T, V)`` whose column t predicts ``tgt[:, t]`` (-100: skip)."""
        torch = self._torch
        with torch.inference_mode():
            sel = tgt != -100
            lp = torch.log_softmax(logits[sel].float(), dim=-1)  # (N, V), only answer positions
            tok_lp = lp.gather(-1, tgt[sel].unsqueeze(-1)).squeeze(-1)
            if token_stats:  # mean and variance of log p over the next-token distribution (Min-K%++)
                prob = lp.exp()
                mu = (prob * lp).sum(-1)
                var = (prob * lp.square()).sum(-1) - mu.square()
                hit = lp.argmax(-1) == tgt[sel]  # greedy prediction equals the label (memorisation)
        counts = sel.sum(-1).tolist()
        out, start = [], 0
        tok_lp = tok_lp.double().cpu().numpy()
        if token_stats:
            mu, var, hit = mu.double().cpu().numpy(), var.double().cpu().numpy(), hit.cpu().numpy()
        for c in counts:
            if token_stats:
                sl = slice(start, start + c)
                out.append({"logprobs": tok_lp[sl], "mu": mu[sl], "var": var[sl], "hit": hit[sl]})
            else:
                out.append(tok_lp[start:start + c])
            start += c
        return out

    def _keeps_logits(self) -> bool:
        if not hasattr(self, "_logits_to_keep"):
            import inspect

            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._logits_to_keep

    def loglik(self, prompts: Sequence[str], answers: Sequence[str], *, token_stats: bool = False,
               progress: bool = False, desc: str = "scoring") -> list:
        """Per-token log-probabilities of each answer given its prompt (answer tokens only).

        Returns a list of float64 arrays; with ``token_stats`` a list of dicts with
        ``logprobs``, ``mu`` and ``var`` (the expectation and variance of log p over the
        model's next-token distribution at each answer position) and ``hit`` (whether the
        most likely token is the scored one).
        """
        if len(prompts) != len(answers):
            raise ValueError("prompts and answers differ in length")
        encoded = [self._encode(p, a) for p, a in zip(prompts, answers)]
        grouped = SP.groups(encoded, self.batch_size) if self._keeps_logits() else []
        if grouped and len(grouped) < len(encoded):  # answers share prompts: each prompt runs once
            return self._loglik_shared(encoded, grouped, token_stats, progress, desc)
        bar = _bar(len(encoded), desc, progress)
        res, self.batch_size = run_bucketed(encoded, [len(e[0]) for e in encoded],
                                            lambda b: self._forward_logprobs(b, token_stats), self.batch_size,
                                            progress=bar.update if bar else None)
        if bar:
            bar.close()
        return res

    def _loglik_shared(self, encoded, grouped: list[list[int]], token_stats: bool, progress: bool, desc: str) -> list:
        mask_fn = lambda ids: key_mask(ids, self.encoding, self.tokenizer.pad_token_id)  # noqa: E731
        lengths = [sum(len(encoded[i][0]) for i in g) for g in grouped]
        per_batch = max(1, self.batch_size // max(len(g) for g in grouped))
        bar = _bar(len(grouped), desc + " (shared prompts)", progress)
        res, _ = run_bucketed(grouped, lengths, lambda b: _split(SP.score_groups(self, encoded, b, token_stats, mask_fn), b),
                              per_batch, progress=bar.update if bar else None)
        if bar:
            bar.close()
        out: list = [None] * len(encoded)
        for part in res:
            for i, r in part.items():
                out[i] = r
        return out

    # -- generation -----------------------------------------------------------------
    def stop_ids(self) -> set[int]:
        """EOS ids that end a generation: the tokenizer's and the generation config's."""
        ids = {self.tokenizer.eos_token_id}
        cfg = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(cfg if isinstance(cfg, (list, tuple)) else [cfg])
        return {i for i in ids if i is not None}

    def generate_ids(self, prompts: Sequence[str], max_new_tokens: int | Sequence[int] = 64, *, progress: bool = False,
                     desc: str = "generating") -> list[list[int]]:
        """Greedy continuations as token ids (stop id included), in input order.

        ``max_new_tokens``: one limit, or one per prompt. Under ``accelerate launch`` the
        prompts are shared out over the processes and the outputs gathered back in order."""
        tok = self.tokenizer
        special = not self.template.chat
        seqs = [list(tok(p, add_special_tokens=special)["input_ids"]) for p in prompts]
        masks = [key_mask(s, self.encoding, tok.pad_token_id) for s in seqs]
        limits = (list(max_new_tokens) if isinstance(max_new_tokens, (list, tuple))
                  else [int(max_new_tokens)] * len(seqs))
        work = list(zip(seqs, masks, limits))
        return distributed.map_sharded(lambda part: self._generate_local(part, progress, desc), work)

    def generation_batch(self) -> int:
        """Rows decoded at once per process: ``GENERATE_BATCH_FACTOR`` x the scoring batch, or
        what halving on out-of-memory left."""
        return self.generate_batch_size or GENERATE_BATCH_FACTOR * self.batch_size

    def _generate_local(self, work: list, progress: bool, desc: str) -> list[list[int]]:
        """Greedy generation of this process's share of ``(ids, mask, limit)`` items."""
        from unlearnbench.lm_generate import greedy

        if not work:
            return []
        seqs, masks, limits = (list(x) for x in zip(*work))
        tok = self.tokenizer
        bar = _bar(len(seqs), desc, progress)
        size = self.generation_batch()
        while True:
            try:
                res = greedy(self.model, seqs, masks, max_new_tokens=limits, stop_ids=self.stop_ids(),
                             pad_id=tok.pad_token_id, batch_size=size, progress=bar.update if bar else None)
                break
            except RuntimeError as err:  # out of memory: start again with half the batch
                if "out of memory" not in str(err).lower() or size == 1:
                    raise
                size = max(1, size // 2)
                self.generate_batch_size = size
                self._torch.cuda.empty_cache() if self._torch.cuda.is_available() else None
                if bar:
                    bar.reset()
        if bar:
            bar.close()
        return res

    def generate(self, prompts: Sequence[str], max_new_tokens: int | Sequence[int] = 64, *, stop: Sequence[str] = (),
                 progress: bool = False, desc: str = "generating") -> list[str]:
        """Greedy continuations of each prompt (new text only, cut at the first stop string)."""
        ids = self.generate_ids(prompts, max_new_tokens, progress=progress, desc=desc)
        return [_cut(decode(self.tokenizer, g, self.encoding), stop) for g in ids]

    # -- provenance / saving ----------------------------------------------------------
    def weights_sha256(self) -> str:
        if self._weights_hash is None:
            import hashlib

            h = hashlib.sha256()
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().view(-1).view(self._torch.uint8).numpy().tobytes())
            self._weights_hash = h.hexdigest()
        return self._weights_hash

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "format": self.format,
            "architecture": type(self.model).__name__,
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "weights_sha256": self.weights_sha256(),
            "template": self.template.to_dict(),
            "encoding": self.encoding.to_dict(),
            "device": self.device_name,
            "dtype": self.dtype_name,
        }

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Save as a safetensors HF folder that :meth:`load` reads back (template included)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model = self.model
        if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
            model.hf_quantizer = None  # a GGUF-loaded model is dequantised already
            model.is_quantized = False
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
        # FSDP / ZeRO-3 runs gathered their weights on the main process (baselines.llm_loop)
        state = getattr(self, "full_state_dict", None)
        model.save_pretrained(out, safe_serialization=True, **({"state_dict": state} if state is not None else {}))
        save_tokenizer(self.tokenizer, out)
        (out / TEMPLATE_FILE).write_text(json.dumps(self.template.to_dict(), indent=2))
        self._weights_hash = None
        return out


def save_tokenizer(tokenizer, out: str | os.PathLike) -> None:
    """``tokenizer.save_pretrained(out)`` without what transformers copies into
    ``tokenizer_config.json`` from the loading environment (``local_files_only`` follows
    ``$HF_HUB_OFFLINE``), so saved bytes depend only on the tokenizer and the library versions
    (the published worlds' manifest relies on it: :mod:`unlearnbench.world_artefacts`)."""
    tokenizer.save_pretrained(out)
    f = Path(out) / "tokenizer_config.json"
    if f.exists():
        doc = json.loads(f.read_text(encoding="utf-8"))
        if doc.pop("local_files_only", None) is not None:
            f.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _split(results: dict, batch: list[list[int]]) -> list[dict]:
    """One dict of per-item results per group, as ``run_bucketed`` expects one result per item."""
    return [{i: results[i] for i in g} for g in batch]


def _cut(text: str, stop: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


def _bar(total: int, desc: str, enabled: bool):
    if not enabled or not distributed.is_main():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", leave=False)


def _hub_revision(model) -> str | None:
    return getattr(getattr(model, "config", None), "_commit_hash", None)


def _check_causal_config(p: Path) -> None:
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p}/config.json is not valid JSON ({getattr(e, 'msg', e)})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{p}/config.json must be a JSON object, not a {type(cfg).__name__}")
    if "_class_name" in cfg or "_diffusers_version" in cfg:
        raise UserError(f"{p} holds a diffusers component, not a causal language model")
    archs = cfg.get("architectures") or []
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise UserError(f"{p} holds a {archs[0]}, not a causal language model")


def load_causal_lm(checkpoint: str, *, task=None, **opts) -> CausalLM:
    return CausalLM.load(checkpoint, task=task, **opts)

