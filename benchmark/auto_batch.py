"""``--batch-size auto``: the largest inference batch that fits, searched once per (model, device).

The search (:func:`largest_batch`) calls a probe at growing batch sizes, doubling from
``start`` until the probe runs out of memory or ``cap`` is reached, then bisects between the
last size that fitted and the first that did not; a probe that fails at ``start`` is retried
at half the size down to 1. Out-of-memory is recognised as in :mod:`unlearnbench.batching`
(``torch.OutOfMemoryError`` or a RuntimeError saying "out of memory"); any other error is
re-raised.

The answer is cached in ``$UNLEARNBENCH_HOME/batch_sizes.json`` keyed by the model (its
weights sha256 when known, else its name), the device (CUDA: the device's name and total
memory, so a cache copied to another machine is not trusted), the dtype and the probe's
sequence length; a second run reuses it without probing. Sequences longer than the probe's
still fit through the halving-on-OOM fallback of :func:`unlearnbench.batching.run_bucketed`
and of generation, which stays on.

On a CPU nothing runs out of memory before the machine swaps, so ``auto`` there means the
adapter's default batch (recorded as ``auto (default on cpu)``); the search runs for causal
LMs on CUDA devices. Classifiers and image generators take their default batch (512 / 16,
``auto (default)``) with ``auto``. The result's ``compute.batch_size_source`` says which
happened.
"""

from __future__ import annotations

import json
import os
from typing import Callable

#: probe sequence length for causal LMs (tokens): TOFU / MUSE QA prompts + answers fit in it
PROBE_TOKENS = 512
#: largest batch the search tries
MAX_BATCH = 1024
CACHE_FILE = "batch_sizes.json"


def is_oom(err: BaseException) -> bool:
    from unlearnbench.batching import _is_oom

    return _is_oom(err)


def largest_batch(fits: Callable[[int], None], *, start: int = 1, cap: int = MAX_BATCH,
                  on_oom: Callable[[], None] | None = None) -> int:
    """The largest batch size ``b <= cap`` for which ``fits(b)`` does not raise out-of-memory.

    ``fits(b)`` runs a probe at batch ``b`` (its return value is ignored). Doubling from
    ``start``, then bisection between the last success and the first failure; when ``start``
    already fails, halving down to 1 (and a failure at 1 is re-raised). ``on_oom`` is called
    after each failure (e.g. ``torch.cuda.empty_cache``).
    """
    def ok(b: int) -> bool:
        try:
            fits(b)
            return True
        except Exception as err:  # noqa: BLE001 - only out-of-memory is handled
            if not is_oom(err):
                raise
            if on_oom is not None:
                on_oom()
            if b == 1:
                raise
            return False

    good = max(1, min(start, cap))
    while not ok(good):
        good //= 2
        if good < 1:  # pragma: no cover - ok(1) raises instead
            raise RuntimeError("no batch size fits")
    bad = None
    while good < cap:
        nxt = min(good * 2, cap)
        if ok(nxt):
            good = nxt
        else:
            bad = nxt
            break
    if bad is None:
        return good
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def device_key(device) -> str:
    """A device's identity for the cache: ``cpu``, or a CUDA device's name and total memory."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(dev.index if dev.index is not None else torch.cuda.current_device())
        return f"cuda:{props.name}:{props.total_memory}"
    return dev.type


def _cache_path():
    from unlearnbench.cache import home

    return home() / CACHE_FILE


def cached(key: str) -> int | None:
    try:
        value = json.loads(_cache_path().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value >= 1 else None


def remember(key: str, size: int) -> None:
    """Store ``size`` under ``key`` (atomic replace; a concurrent writer may drop an entry, never corrupt)."""
    from unlearnbench.results import atomic_write_json

    path = _cache_path()
    try:
        doc = json.loads(path.read_text())
        doc = doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        doc = {}
    doc[key] = int(size)
    atomic_write_json(path, doc)


def resolve(model_key: str, device, dtype: str, probe: Callable[[int], None], *, default: int,
            tokens: int = PROBE_TOKENS, cap: int = MAX_BATCH, search_on_cpu: bool = False) -> tuple[int, str]:
    """``(batch size, source)`` for ``--batch-size auto``: cached, searched with ``probe`` on a
    CUDA device (then cached), or ``default`` on other devices."""
    dev = device_key(device)
    if dev == "cpu" and not search_on_cpu:
        return default, "auto (default on cpu)"
    key = f"{model_key}|{dev}|{dtype}|{tokens}"
    hit = cached(key)
    if hit is not None:
        return hit, "auto (cached)"
    empty = None
    try:
        import torch

        empty = torch.cuda.empty_cache if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        pass
    size = largest_batch(probe, start=default, cap=cap, on_oom=empty)
    if os.environ.get("UNLEARNBENCH_NO_BATCH_CACHE") != "1":
        remember(key, size)
    return size, "auto (searched)"


def causal_lm_probe(lm, tokens: int = PROBE_TOKENS) -> Callable[[int], None]:
    """A probe for a :class:`~unlearnbench.causal_lm.CausalLM`: one scoring forward pass over
    ``b`` sequences of ``tokens`` tokens, with the log-softmax over every position (the most
    memory scoring uses)."""
    def fits(b: int) -> None:
        torch = lm._torch
        n = min(tokens, int(getattr(lm.model.config, "max_position_embeddings", tokens) or tokens))
        ids = torch.full((b, n), int(lm.tokenizer.eos_token_id or 0), dtype=torch.long, device=lm.device)
        with torch.inference_mode():
            logits = lm.model(input_ids=ids).logits
            torch.log_softmax(logits.float(), dim=-1)
        del ids, logits

    return fits
