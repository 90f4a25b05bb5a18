"""Representation Misdirection for Unlearning (RMU).

Li et al. (2024), "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning",
§5 and ``rmu/unlearn.py``: at layer ℓ, push the forget activations towards a fixed random
direction scaled by a steering coefficient and keep the retain activations where the frozen
model puts them:
``L = mean‖h_θ^ℓ(x_f) - c·u‖² + α·mean‖h_θ^ℓ(x_r) - h_frozen^ℓ(x_r)‖²``,
``u ~ U[0,1)^d / ‖·‖``. Only the MLP down-projections of layers ℓ-2, ℓ-1, ℓ are updated
(``param_ids=[6]`` of a Llama/Mistral decoder layer); every other weight stays bit-identical.

The activations ``h^ℓ`` are the residual-stream output of decoder layer ℓ, read with a forward
hook on that layer as WMDP's ``forward_with_cache`` does. (HF's ``hidden_states[ℓ + 1]`` is the
same tensor except at the last layer, where it is the final RMSNorm's output: a unit-scale
vector that no steering coefficient above ~√d can reach.)

The ``Config`` defaults are the published ones (Zephyr-7B-beta; WMDP ``rmu/unlearn.py``
arguments and the README command): layer 7 (updating 5, 6, 7), c = 6.5, α = 1200, lr 5e-5,
batch 4, 150 batches, AdamW at a constant lr with no gradient clipping. Tiny world models
need other values (their activation norms and depths differ): the ``mini-*`` tasks carry
their own tuned RMU defaults in ``settings["method_defaults"]`` (see
:func:`unlearnbench.unlearning.task_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.baselines.llm_loop import LLMMethod, LoopConfig, forward
from unlearnbench.errors import UserError
from unlearnbench.unlearning import register_method


@dataclass
class RMUConfig(LoopConfig):
    epochs: int = 1
    max_steps: int | None = 150  # paper: max_num_batches 150
    lr: float = 5e-5             # paper: 5e-5
    batch_size: int = 4          # paper: 4
    grad_accum: int = 1          # paper: none
    warmup_ratio: float = 0.0    # paper: no warm-up ...
    lr_schedule: str = "constant"  # ... and a constant lr (plain AdamW, no scheduler)
    max_grad_norm: float = 0.0   # paper: no gradient clipping
    layer: int = 7               # paper: 7 (of 32); negative counts from the top (-1 = last layer)
    n_update_layers: int = 3     # paper: layers 5, 6, 7 (the MLP down-projections)
    steering_coeff: float = 6.5  # paper: 6.5 (Zephyr-7B)
    alpha: float = 1200.0        # paper: 1200 (Zephyr-7B)


def _layers(model):
    base = getattr(model, "model", model)
    base = getattr(base, "model", base) if not hasattr(base, "layers") else base
    if not hasattr(base, "layers"):
        raise UserError("rmu needs a decoder with .model.layers (Llama, Mistral, Qwen, SmolLM ...)")
    return base.layers


def _layer_index(model, layer: int) -> int:
    n = len(_layers(model))
    idx = layer if layer >= 0 else n + layer
    if not 0 <= idx < n:
        raise UserError(f"rmu layer {layer} is outside the model's {n} layers")
    return idx


def layer_output(model, batch, module):
    """Run ``model`` on ``batch`` and return what ``module`` (a decoder layer) output."""
    seen = []

    def hook(_module, _inputs, output):
        seen.append(output[0] if isinstance(output, tuple) else output)

    handle = module.register_forward_hook(hook)
    try:
        forward(model, batch)
    finally:
        handle.remove()
    return seen[0]


class RMU(LLMMethod):
    name = "rmu"
    needs_ref = True
    Config = RMUConfig

    def trainable_parameters(self, model, config):
        idx = _layer_index(model, config.layer)
        layers = _layers(model)
        return [layers[i].mlp.down_proj.weight for i in range(max(0, idx - config.n_update_layers + 1), idx + 1)]

    def setup(self, ctx):
        import torch

        from unlearnbench.baselines.llm_losses import rmu_control_vector

        unwrapped = ctx.accelerator.unwrap_model(ctx.model)
        g = torch.Generator().manual_seed(ctx.state["seed"])
        hidden = unwrapped.config.hidden_size
        ctx.state["control"] = rmu_control_vector(hidden, ctx.config.steering_coeff, g).to(ctx.accelerator.device)
        idx = _layer_index(unwrapped, ctx.config.layer)
        ctx.state["modules"] = (_layers(unwrapped)[idx], _layers(ctx.ref_model)[idx])

    def loss(self, ctx, batch):
        import torch

        from unlearnbench.baselines.llm_losses import rmu_loss

        mine, frozen = ctx.state["modules"]
        f, r = batch["forget"], batch["retain"]
        hf = layer_output(ctx.model, f, mine)
        hr = layer_output(ctx.model, r, mine)
        with torch.no_grad():
            hr0 = layer_output(ctx.ref_model, r, frozen)
        forget, retain = rmu_loss(hf, ctx.state["control"], f["attention_mask"], hr, hr0, r["attention_mask"],
                                  ctx.config.alpha)
        return forget + retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("rmu", "llm", "unlearnbench.baselines.rmu:RMU",
                description="steer forget activations to a random vector at one layer; keep retain activations",
                paper="Li et al. 2024, WMDP (arXiv:2403.03218)")
