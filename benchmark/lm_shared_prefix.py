"""Scoring answers that share a prompt: the prompt runs once, its keys and values serve them all.

TOFU scores the gold, paraphrased and five perturbed answers of one question under the same
prompt (seven sequences; the prompt is about half of each). Items are grouped by the exact
token ids before their first scored token; one pass over each group's prefix gives the cache
and the prediction of the first answer token, and one pass over the answers (right-padded,
attending to the prefix through the cache) gives the rest. Positions and attention masks are
each sequence's own, so the numbers are those of scoring every sequence whole, up to float
rounding (``tests/test_causal_lm.py`` checks the two paths agree).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

Encoded = tuple[list[int], list[int]]  # token ids, labels (-100 where not scored)


def split_prefix(ids: list[int], labels: list[int]) -> int:
    """Index of the first scored token (at least 1: the first token is never predicted)."""
    for i, lab in enumerate(labels):
        if lab != -100:
            return max(i, 1)
    return len(ids)


@lru_cache(maxsize=None)
def _cache_keyword(model_class: type) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def with_cache(model, cache) -> dict:
    """The model's ``forward`` keyword for its KV cache: ``cache`` in newer transformers, which
    warn on the older ``past_key_values`` (the only one before them)."""
    return {_cache_keyword(type(model)): cache}


MIN_PREFIX = 4  # shorter shared prefixes (a lone BOS before raw texts) are not worth a cache


def groups(encoded: Sequence[Encoded], max_size: int) -> list[list[int]]:
    """Item indices grouped by identical prefix ids (at most ``max_size`` per group; prefixes
    under ``MIN_PREFIX`` tokens are not shared), in order of first appearance."""
    by: dict[tuple, list[int]] = {}
    for i, (ids, labels) in enumerate(encoded):
        cut = split_prefix(ids, labels)
        by.setdefault(tuple(ids[:cut]) if cut >= MIN_PREFIX else ("alone", i), []).append(i)
    return [g[k:k + max_size] for g in by.values() for k in range(0, len(g), max(1, max_size))]


def score_groups(lm, encoded: Sequence[Encoded], members: list[list[int]], token_stats: bool,
                 mask_fn: Callable[[list[int]], list[int]]) -> dict[int, object]:
    """Per-item results (as ``CausalLM._forward_logprobs``) for the groups in ``members``."""
    import torch
    from transformers import DynamicCache

    pad = lm.tokenizer.pad_token_id
    cut = [split_prefix(*encoded[g[0]]) for g in members]
    prefixes = [encoded[g[0]][0][:c] for g, c in zip(members, cut)]
    ids = lm._pad(prefixes, pad, True)
    real = lm._pad([[1] * len(p) for p in prefixes], 0, True)
    mask = lm._pad([mask_fn(p) for p in prefixes], 0, True)
    pos = (real.cumsum(-1) - 1).clamp(min=0)
    items = [i for g in members for i in g]
    owner = torch.tensor([k for k, g in enumerate(members) for _ in g], device=ids.device)
    suffix = [encoded[i][0][cut[k]:] for k, g in enumerate(members) for i in g]
    sub_labels = [encoded[i][1][cut[k]:] for k, g in enumerate(members) for i in g]
    with torch.inference_mode():
        cache = DynamicCache(config=lm.model.config)
        first = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, **with_cache(lm.model, cache),
                         use_cache=True, logits_to_keep=1).logits[:, -1]
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[owner], layer.values[owner]
        s_ids = lm._pad(suffix, pad, False)
        s_mask = lm._pad([mask_fn(s) for s in suffix], 0, False)
        start = real.sum(-1)[owner]
        s_pos = start[:, None] + torch.arange(s_ids.shape[1], device=ids.device)[None]
        logits = lm.model(input_ids=s_ids, attention_mask=torch.cat([mask[owner], s_mask], dim=1), position_ids=s_pos,
                          **with_cache(lm.model, cache), use_cache=True).logits
        # the prediction of suffix token t: the prefix's last logits for t = 0, else suffix logits t - 1
        logits = torch.cat([first[owner][:, None], logits[:, :-1]], dim=1)
        labels = lm._pad(sub_labels, -100, False)
        return dict(zip(items, lm._logprobs_from(logits, labels, token_stats)))
