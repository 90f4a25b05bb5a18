"""Several processes, one result: ``accelerate launch`` on 2 gloo CPU processes gives the rows,
metrics and weights of a single process, and writes one result (``unlearnbench.distributed``).

The launched runs are real: ``python -m accelerate.commands.launch --multi_gpu --num_processes 2``
starts two ranks through torchrun; on a machine without CUDA they form a gloo group, so the
sharding, the ordered gather and the rank-0-only writes run exactly the code a GPU run uses
(only the backend differs: NCCL there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnbench import distributed

TASK = "mini-tofu/forget10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], n: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, UNLEARNBENCH_THREADS="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "unlearnbench.cli", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the sharding arithmetic (no process group needed) -------------------------------------------
@pytest.mark.parametrize("n,ranks", [(0, 2), (1, 2), (7, 2), (10, 3), (5, 8)])
def test_shards_partition_the_items(n, ranks):
    shards = [distributed.shard_indices(n, ranks, r) for r in range(ranks)]
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(n))  # every item exactly once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


def test_single_process_is_untouched():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert not distributed.sharding()
    assert distributed.map_sharded(lambda xs: [x * 2 for x in xs], [3, 1, 2]) == [6, 2, 4]
    block = distributed.compute_block(type("M", (), {"batch_size": 8, "device_name": "cpu", "dtype_name": "float32"})())
    assert block == {"world_size": 1, "per_device_batch": 8, "effective_batch": 8, "device": "cpu", "dtype": "float32"}


def test_batches_are_the_single_process_ones_on_every_rank(monkeypatch):
    """Under 2 ranks ``run_bucketed`` gives each rank whole batches of the 1-process plan, and
    the gather puts every result back at its index (simulated ranks, the real gather code)."""
    from unlearnbench import batching

    items = list(range(11))
    lengths = [5, 1, 9, 3, 3, 8, 2, 7, 7, 1, 4]
    plan = batching.length_buckets(lengths, 3)
    seen: dict[int, list[list[int]]] = {0: [], 1: []}
    outputs = {}
    for me in (0, 1):
        monkeypatch.setattr(distributed, "sharding", lambda: True)
        monkeypatch.setattr(distributed, "shard_indices", lambda n, me=me: list(range(me, n, 2)))
        monkeypatch.setattr(distributed, "gather_in_order",
                            lambda res, idx, n, me=me: outputs.__setitem__(me, (idx, res)) or [None] * n)

        def fn(batch, me=me):
            seen[me].append(list(batch))
            return [x * 10 for x in batch]

        batching.run_bucketed(items, lengths, fn, 3)
    assert seen[0] == [[items[i] for i in b] for b in plan[0::2]]
    assert seen[1] == [[items[i] for i in b] for b in plan[1::2]]
    merged = {}
    for idx, res in outputs.values():
        merged.update(zip(idx, res))
    assert merged == {i: i * 10 for i in items}


# -- real 2-process runs -----------------------------------------------------------------------
def test_two_process_score_equals_one_process(tmp_path):
    """``score`` under 2 processes: the same per-sample rows and metrics, one result file, one "wrote"."""
    from unlearnbench.runner import score

    one = score(TASK, "world:target", out_dir=tmp_path / "one", seed=0, progress=False, options={"limit": 6})
    proc = _launch(["score", TASK, "world:target", "-o", str(tmp_path / "two"), "--limit", "6", "--quiet"])
    results = sorted((tmp_path / "two").glob("*.result.json"))
    assert [p.name for p in results] == [one.path.name]
    assert proc.stdout.count("wrote ") == 1
    two = json.loads(results[0].read_text())
    assert _rows(tmp_path / "two" / two["per_sample"]["path"]) == _rows(one.path.parent / one.result["per_sample"]["path"])
    assert two["metrics"] == one.result["metrics"]
    assert two["model"]["weights_sha256"] == one.result["model"]["weights_sha256"]
    assert two["compute"]["world_size"] == 2 and one.result["compute"]["world_size"] == 1
    assert two["compute"]["effective_batch"] == 2 * two["compute"]["per_device_batch"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir() if p.name.startswith(".")) == []  # no temp files left


@pytest.mark.slow
def test_two_process_run_equals_one_process(tmp_path):
    """``run`` (unlearn + score) under 2 processes, 4 forget examples per process, equals one process
    taking the same 8 examples as 2 accumulated micro-batches of 4: the same weights, rows and
    metrics, one checkpoint and one result; the effective batch is recorded for both."""
    common = ["run", TASK, "--method", "ga", "--set", "max_steps=2", "--set", "batch_size=4", "--quiet"]
    from unlearnbench.cli import main

    assert main([*common, "--set", "grad_accum=2", "-o", str(tmp_path / "one")]) == 0
    proc = _launch([*common, "--set", "grad_accum=1", "-o", str(tmp_path / "two")])
    assert proc.stdout.count("wrote ") == 2  # the checkpoint and the result, once each
    one = json.loads(next((tmp_path / "one").glob("*.result.json")).read_text())
    results = list((tmp_path / "two").glob("*.result.json"))
    assert len(results) == 1 and len(list((tmp_path / "two").glob("*.checkpoint"))) == 1
    two = json.loads(results[0].read_text())
    assert two["model"]["weights_sha256"] == one["model"]["weights_sha256"]
    assert two["metrics"] == one["metrics"]
    assert _rows(tmp_path / "two" / two["per_sample"]["path"]) == _rows(tmp_path / "one" / one["per_sample"]["path"])
    assert one["compute"]["unlearn"]["effective_batch"] == two["compute"]["unlearn"]["effective_batch"] == 8
    assert two["compute"]["unlearn"]["world_size"] == 2


@pytest.mark.slow
def test_two_process_classifier_score_equals_one_process(tmp_path):
    """The classifier path: ``predict``'s batches shared out over 2 processes give the same rows."""
    from unlearnbench.runner import score

    one = score("digits/random-10", "world:target", out_dir=tmp_path / "one", seed=0, progress=False)
    _launch(["score", "digits/random-10", "world:target", "-o", str(tmp_path / "two"), "--quiet"])
    (result,) = (tmp_path / "two").glob("*.result.json")
    two = json.loads(result.read_text())
    assert _rows(tmp_path / "two" / two["per_sample"]["path"]) == _rows(one.path.parent / one.result["per_sample"]["path"])
    assert two["metrics"] == one.result["metrics"] and two["compute"]["world_size"] == 2


def _simulate_ranks(monkeypatch, call, ranks: int = 2):
    """Run ``call()`` once per simulated rank with the real sharding helpers; the other ranks go
    first and stop at the gather (their part recorded), then rank 0 gathers every part. Returns
    (rank 0's output, items each rank ran)."""
    class Stop(Exception):
        pass

    parts: dict[int, tuple] = {}
    result = None
    for me in reversed(range(ranks)):
        monkeypatch.setattr(distributed, "sharding", lambda: True)
        monkeypatch.setattr(distributed, "is_main", lambda me=me: me == 0)
        monkeypatch.setattr(distributed, "shard_indices", lambda n, me=me: list(range(me, n, ranks)))

        def gather(res, idx, n, me=me):
            parts[me] = (list(idx), list(res))
            if me != 0:
                raise Stop
            out = [None] * n
            for i2, r2 in parts.values():
                for i, r in zip(i2, r2):
                    out[i] = r
            return out

        monkeypatch.setattr(distributed, "gather_in_order", gather)
        try:
            result = call()
        except Stop:
            continue
    return result, {me: p[0] for me, p in parts.items()}


def test_image_batches_shared_over_ranks_give_the_same_images(monkeypatch, tiny_sd_dir):
    """``ImageGenerator.sample`` under 2 (simulated) ranks: each rank runs every other pipeline batch,
    and the gathered images are bit-identical to one process's."""
    from unlearnbench.image_generator import load_image_generator

    g = load_image_generator(str(tiny_sd_dir), device="cpu", dtype="float32", batch_size=2)
    prompts, seeds, guidance = ["a cat", "a dog", "a cat", "ink", "a dog"], [1, 2, 3, 4, 5], [3.0, 3.0, 1.0, 3.0, 3.0]
    alone = g.sample(prompts, seeds, guidance=guidance, steps=3)
    shared, ran = _simulate_ranks(monkeypatch, lambda: g.sample(prompts, seeds, guidance=guidance, steps=3))
    assert (shared == alone).all()
    assert sorted(ran[0] + ran[1]) == list(range(len(ran[0]) + len(ran[1]))) and ran[0] and ran[1]


def test_generation_prompts_shared_over_ranks_give_the_same_tokens(monkeypatch, tiny_lm_dir):
    """``CausalLM.generate_ids`` under 2 (simulated) ranks: each rank generates every other prompt and
    the gathered outputs are those of one process, in input order."""
    from unlearnbench.causal_lm import CausalLM

    lm = CausalLM.load(str(tiny_lm_dir), device="cpu")
    prompts = ["What genre does Ava Lund write", "Who is Bo Kerr", "Cy Moss writes", "Where is Oslo", "Di Park"]
    alone = lm.generate_ids(prompts, max_new_tokens=[3, 5, 4, 6, 2])
    shared, ran = _simulate_ranks(monkeypatch, lambda: lm.generate_ids(prompts, max_new_tokens=[3, 5, 4, 6, 2]))
    assert shared == alone
    assert ran == {0: [0, 2, 4], 1: [1, 3]}


def test_sharded_weights_are_gathered_and_saved_from_the_full_state(tmp_path, tiny_lm_dir):
    """FSDP / ZeRO-3 path of the LLM loop, without GPUs: the loop asks accelerate for the gathered
    state dict (only under those back-ends), and ``save`` writes those weights, not the local shard."""
    import torch
    from accelerate.utils import DistributedType

    from unlearnbench.baselines.llm_loop import _gathered_state
    from unlearnbench.causal_lm import CausalLM

    lm = CausalLM.load(str(tiny_lm_dir), device="cpu")
    full = {k: v.clone() + 1.0 for k, v in lm.model.state_dict().items()}  # "the other shards' weights"

    class Acc:
        def __init__(self, kind):
            self.distributed_type = kind

        def get_state_dict(self, model):
            return full

    assert _gathered_state(Acc(DistributedType.MULTI_GPU), lm.model) is None  # DDP: weights are whole
    assert _gathered_state(Acc(DistributedType.NO), lm.model) is None
    assert _gathered_state(Acc(DistributedType.FSDP), lm.model) is full
    assert _gathered_state(Acc(DistributedType.DEEPSPEED), lm.model) is full
    lm.full_state_dict = full
    lm.save(tmp_path / "ckpt")
    back = CausalLM.load(str(tmp_path / "ckpt"), device="cpu")
    for k, v in back.model.state_dict().items():
        assert torch.equal(v, full[k]), k
