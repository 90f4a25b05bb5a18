"""The shipped ``accelerate`` configs parse as accelerate configs, and every option they set exists.

``accelerate launch --config_file F`` turns each entry of ``fsdp_config`` / ``deepspeed_config``
into the launch option of the same name, so an option that does not exist would be dropped or
fail on the GPU machine; these checks run here, without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import unlearnbench

CONFIGS = sorted(Path(unlearnbench.__file__).parent.glob("accelerate_*.yaml"))
EXPECTED = {"accelerate_ddp.yaml": "MULTI_GPU", "accelerate_fsdp_7b.yaml": "FSDP",
            "accelerate_zero3_7b.yaml": "DEEPSPEED", "accelerate_1gpu_bf16.yaml": "NO"}


def test_the_documented_configs_are_shipped():
    assert sorted(p.name for p in CONFIGS) == sorted(EXPECTED)
    readme = (Path(unlearnbench.__file__).resolve().parents[1] / "README.md").read_text()
    for name in EXPECTED:
        assert name in readme  # the README's multi-GPU section uses each


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_its_options_exist(path):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    cfg = load_config_from_file(str(path))  # raises on unknown top-level keys
    assert isinstance(cfg, ClusterConfig)
    assert cfg.distributed_type.value == EXPECTED[path.name]
    actions = launch_command_parser()._option_string_actions
    assert cfg.mixed_precision in actions["--mixed_precision"].choices
    for key, value in {**cfg.fsdp_config, **cfg.deepspeed_config}.items():
        assert f"--{key}" in actions, f"{path.name}: {key} is not an accelerate launch option"
        act = actions[f"--{key}"]
        if act.choices:
            assert str(value) in act.choices, f"{path.name}: {key}={value} not in {act.choices}"
    if cfg.distributed_type.value != "NO":
        assert cfg.num_processes >= 2


def test_fsdp_config_builds_an_fsdp_plugin_for_llama():
    """The FSDP settings are accepted by accelerate's plugin and name a real decoder layer class."""
    import torch
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.commands.config.config_args import load_config_from_file
    from transformers.models.llama import modeling_llama

    fsdp = load_config_from_file(str(next(p for p in CONFIGS if "fsdp" in p.name))).fsdp_config
    assert hasattr(modeling_llama, fsdp["fsdp_transformer_layer_cls_to_wrap"])
    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=int(fsdp["fsdp_version"]), sharding_strategy=fsdp["fsdp_sharding_strategy"],
        auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"],
        transformer_cls_names_to_wrap=[fsdp["fsdp_transformer_layer_cls_to_wrap"]],
        backward_prefetch=fsdp["fsdp_backward_prefetch"], state_dict_type=fsdp["fsdp_state_dict_type"],
        use_orig_params=fsdp["fsdp_use_orig_params"], cpu_ram_efficient_loading=fsdp["fsdp_cpu_ram_efficient_loading"],
        # accelerate refuses sync_module_states on a CPU-only machine; it is a plain flag on GPUs
        sync_module_states=fsdp["fsdp_sync_module_states"] and torch.cuda.is_available())
    assert str(plugin.state_dict_type).endswith("FULL_STATE_DICT")
    assert "FULL_SHARD" in str(plugin.sharding_strategy)


def test_zero3_config_is_stage_3_and_saves_whole_weights():
    from accelerate.commands.config.config_args import load_config_from_file

    ds = load_config_from_file(str(next(p for p in CONFIGS if "zero3" in p.name))).deepspeed_config
    assert ds["zero_stage"] == 3 and ds["zero3_save_16bit_model"] is True
    assert ds["offload_optimizer_device"] in ("none", "cpu", "nvme") and ds["offload_param_device"] in ("none", "cpu", "nvme")
    from unlearnbench.baselines.llm_loop import LoopConfig

    # the loop's defaults agree with the config (the README says to keep them equal)
    assert ds["gradient_accumulation_steps"] == LoopConfig.grad_accum and ds["gradient_clipping"] == LoopConfig.max_grad_norm


def test_gpu_check_script_skips_cleanly_without_cuda(capsys, monkeypatch):
    """``tests/perf/gpu_check.py`` measures on a GPU machine; without CUDA it says so and exits 0."""
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = Path(__file__).parent / "perf" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
