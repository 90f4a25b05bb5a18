"""Cost of one greedy decoding step against the number of rows decoded together.

Not part of the test suite. Run:  python tests/perf/decode_batch.py MODEL [--rows 16 64 96] [--threads 2]

MODEL is a Hugging Face folder or a GGUF file (e.g. the ``ou-smollm2`` fixture's float32
conversion of SmolLM2-135M-Instruct). For each row count it decodes ``--steps`` tokens after
prompts of ``--prompt-tokens`` tokens with :func:`unlearnbench.lm_generate.greedy` (no stop
token, so every row runs every step) and reports milliseconds per step and per generated
token, the prompt pass subtracted (a run of one new token is timed too). This is what
``GENERATE_BATCH_FACTOR`` in ``unlearnbench/causal_lm.py`` rests on.
"""

from __future__ import annotations

import argparse
import time

import torch

from unlearnbench.causal_lm import CausalLM
from unlearnbench.lm_generate import greedy


def timed(lm: CausalLM, prompts: list[list[int]], new_tokens: int) -> float:
    masks = [[1] * len(p) for p in prompts]
    t0 = time.perf_counter()
    greedy(lm.model, prompts, masks, max_new_tokens=new_tokens, stop_ids=set(), pad_id=lm.tokenizer.pad_token_id,
           batch_size=len(prompts))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--rows", type=int, nargs="+", default=[16, 64, 96])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=150)
    ap.add_argument("--steps", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = CausalLM.load(a.model, device="cpu", dtype="float32")
    vocab = lm.model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    print(f"{lm.name}: {a.threads} thread(s), prompts of {a.prompt_tokens} tokens, {a.steps} steps")
    print("rows | ms per step | ms per generated token")
    for b in a.rows:
        prompts = torch.randint(100, vocab, (b, a.prompt_tokens), generator=gen).tolist()
        timed(lm, prompts[:2], 2)  # warm-up
        step = (timed(lm, prompts, a.steps + 1) - timed(lm, prompts, 1)) / a.steps
        print(f"{b:4d} | {1000 * step:11.1f} | {1000 * step / b:.1f}")


if __name__ == "__main__":
    main()
