"""``--batch-size auto``: the search for the largest batch that fits, its cache, and its record.

There is no GPU here, so out-of-memory is simulated by a probe that raises
``torch.OutOfMemoryError`` (the exception CUDA raises) above a limit: that tests the search
itself, not a metric. The CausalLM wiring is tested on CPU, where ``auto`` means the default.
"""

from __future__ import annotations

import json

import pytest
import torch

from unlearnbench import auto_batch


def _fake_gpu(limit: int, calls: list[int] | None = None):
    def fits(b: int) -> None:
        if calls is not None:
            calls.append(b)
        if b > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {b} GiB")

    return fits


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 16, 37, 100, 1000])
def test_search_finds_the_largest_batch_that_fits(limit):
    calls: list[int] = []
    assert auto_batch.largest_batch(_fake_gpu(limit, calls), start=4, cap=1024) == limit
    assert len(calls) <= 2 * 11 + 2  # doubling then bisection: logarithmic in the cap


def test_search_stops_at_the_cap_and_halves_below_the_start():
    assert auto_batch.largest_batch(_fake_gpu(10_000), start=16, cap=64) == 64
    calls: list[int] = []
    assert auto_batch.largest_batch(_fake_gpu(3, calls), start=16, cap=64) == 3
    assert calls[:3] == [16, 8, 4]  # halving from the start, as the OOM fallback does


def test_search_reraises_other_errors_and_oom_at_one():
    def broken(b):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        auto_batch.largest_batch(broken)
    with pytest.raises(torch.OutOfMemoryError):
        auto_batch.largest_batch(_fake_gpu(0), start=4)
    # the message form that older torch and other back-ends use counts as out-of-memory too
    def old_style(b):
        if b > 6:
            raise RuntimeError("CUDA error: out of memory")

    assert auto_batch.largest_batch(old_style, start=1, cap=64) == 6


def test_found_once_then_cached_per_model_and_device(monkeypatch, tmp_path):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    monkeypatch.setattr(auto_batch, "device_key", lambda device: f"cuda:FakeGPU:{device}")
    calls: list[int] = []
    size, source = auto_batch.resolve("sha-a", "dev0", "bfloat16", _fake_gpu(24, calls), default=8)
    assert (size, source) == (24, "auto (searched)")
    n = len(calls)
    size, source = auto_batch.resolve("sha-a", "dev0", "bfloat16", _fake_gpu(24, calls), default=8)
    assert (size, source) == (24, "auto (cached)") and len(calls) == n  # no probe the second time
    # another model, dtype or device is searched on its own
    assert auto_batch.resolve("sha-b", "dev0", "bfloat16", _fake_gpu(5), default=8) == (5, "auto (searched)")
    assert auto_batch.resolve("sha-a", "dev1", "bfloat16", _fake_gpu(7), default=8) == (7, "auto (searched)")
    assert auto_batch.resolve("sha-a", "dev0", "float32", _fake_gpu(9), default=8) == (9, "auto (searched)")
    stored = json.loads((tmp_path / auto_batch.CACHE_FILE).read_text())
    assert sorted(stored.values()) == [5, 7, 9, 24]


def test_cpu_takes_the_default_without_probing(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))

    def never(b):
        raise AssertionError("probed on cpu")

    assert auto_batch.resolve("sha", "cpu", "float32", never, default=16) == (16, "auto (default on cpu)")
    assert not (tmp_path / auto_batch.CACHE_FILE).exists()


def test_causal_lm_probe_runs_a_real_forward(tiny_lm_dir):
    """The probe is a real forward pass at the probe length (here on CPU, which never fails)."""
    from unlearnbench.causal_lm import CausalLM

    lm = CausalLM.load(str(tiny_lm_dir), device="cpu", batch_size="auto")
    assert lm.batch_size == 16 and lm.batch_size_source == "auto (default on cpu)"
    auto_batch.causal_lm_probe(lm, tokens=8)(2)  # runs without error
    size, source = auto_batch.resolve("probe-test", "cpu", "float32", auto_batch.causal_lm_probe(lm, tokens=8),
                                      default=2, cap=4, search_on_cpu=True)
    assert (size, source) == (4, "auto (searched)")


def test_auto_is_recorded_in_the_result(tmp_path):
    from unlearnbench.runner import score

    scored = score("mini-tofu/forget10", "world:target", out_dir=tmp_path, progress=False, batch_size="auto",
                   options={"limit": 2})
    comp = json.loads(scored.path.read_text())["compute"]
    assert comp["batch_size_source"] == "auto (default on cpu)"
    assert comp["per_device_batch"] == 16 and comp["world_size"] == 1
