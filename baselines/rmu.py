"""Representation Misdirection for Unlearning (RMU).

Li et al. (2024), "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning",
§5 and ``rmu/unlearn.py``: at layer ℓ, push the forget activations towards a fixed random
direction scaled by a steering coefficient and keep the retain activations where the frozen
model puts them:
``L = mean‖h_θ^ℓ(x_f) - c·u‖² + α·mean‖h_θ^ℓ(x_r) - h_frozen^ℓ(x_r)‖²``,
``u ~ U[0,1)^d / ‖·‖``. Only the MLP down-projections of layers ℓ-2, ℓ-1, ℓ are updated
(``param_ids=[6]`` of a Llama/Mistral decoder layer); every other weight stays bit-identical.

The ``Config`` defaults are the published ones (Zephyr-7B-beta; WMDP ``rmu/unlearn.py``
arguments and the README command): layer 7 (updating 5, 6, 7), c = 6.5, α = 1200, lr 5e-5,
batch 4, 150 batches, AdamW at a constant lr. Tiny world models need other values (their
activation norms and depths differ): the ``mini-*`` tasks carry their own tuned RMU defaults
in ``settings["method_defaults"]`` (see :func:`unlearnbench.unlearning.task_defaults`).
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
    warmup_ratio: float = 0.0    # paper: constant lr
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
        ctx.state["layer"] = _layer_index(unwrapped, ctx.config.layer)

    def loss(self, ctx, batch):
        import torch

        from unlearnbench.baselines.llm_losses import rmu_loss

        k = ctx.state["layer"] + 1  # hidden_states[0] is the embedding output
        f, r = batch["forget"], batch["retain"]
        hf = forward(ctx.model, f, output_hidden_states=True).hidden_states[k]
        hr = forward(ctx.model, r, output_hidden_states=True).hidden_states[k]
        with torch.no_grad():
            hr0 = forward(ctx.ref_model, r, output_hidden_states=True).hidden_states[k]
        forget, retain = rmu_loss(hf, ctx.state["control"], f["attention_mask"], hr, hr0, r["attention_mask"],
                                  ctx.config.alpha)
        return forget + retain, {"forget": forget.detach(), "retain": retain.detach()}


register_method("rmu", "llm", "unlearnbench.baselines.rmu:RMU",
                description="steer forget activations to a random vector at one layer; keep retain activations",
                paper="Li et al. 2024, WMDP (arXiv:2403.03218)")
