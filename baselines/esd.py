"""ESD: Erased Stable Diffusion (Gandikota et al., "Erasing Concepts from Diffusion Models", ICCV 2023).

Loss (their eq. 7): with a frozen copy theta* of the model and the concept prompt c,

    L = || eps_theta(x_t, c, t) - [ eps_theta*(x_t, t) - eta * (eps_theta*(x_t, c, t) - eps_theta*(x_t, t)) ] ||^2

where x_t is produced by the model being edited itself, sampling with DDIM from noise towards
c for a random number of the ``ddim_steps`` steps (``quick_sample_till_t`` in their code).
``variant='x'`` (ESD-x) trains the cross-attention (``attn2``) weights only, recommended for
styles; ``variant='u'`` (ESD-u) trains every UNet weight except cross-attention, time
embedding and the output layers (their ``noxattn``), recommended for nudity and objects.
``variant='auto'`` picks x for style tasks and u otherwise.

Scale: the paper's 1000 iterations at lr 1e-5 are for SD v1.4; on an embedded world
(``settings['method_scale']['esd']``) fewer iterations at a larger lr are used, and the
values used are what ``unlearn_config.json`` records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.unlearning import register_method

PAPER = {"iterations": 1000, "lr": 1e-5, "ddim_steps": 50}


@dataclass
class Config:
    variant: str = "auto"  # 'x' (cross-attention) or 'u' (non-cross-attention); auto: x for styles, u otherwise
    negative_guidance: float = 1.0  # eta, Gandikota et al. 2023
    start_guidance: float = 3.0  # CFG scale of the partial sampling (their train-esd.py default)
    iterations: int | None = None  # 1000 (paper); None -> paper or the world's scaled value
    lr: float | None = None  # 1e-5 (paper)
    ddim_steps: int | None = None  # 50 (paper)
    seed: int | None = None  # None: the run's seed (--seed)


def esd_parameters(unet, variant: str):
    from unlearnbench.baselines.diffusion_loop import select

    if variant == "x":
        return select(unet, lambda n: "attn2" in n)
    if variant == "u":
        return select(unet, lambda n: not ("attn2" in n or "time_emb" in n or n.startswith(("conv_out", "conv_norm_out"))))
    from unlearnbench.errors import UserError

    raise UserError(f"esd variant must be 'x', 'u' or 'auto', not {variant!r}")


def esd_loss_fn(model, frozen_unet, concept: str, cfg: Config, rng: np.random.Generator, text_encoder=None):
    """The ESD loss closure over one random timestep (shared with AdvUnlearn's outer step)."""
    import torch

    from unlearnbench.baselines.diffusion_loop import ddim_partial, encode, latent_shape

    emb_0 = encode(model, [""])
    emb_p_frozen = encode(model, [concept])
    shape = latent_shape(model)

    def loss(step: int, cond=None):
        t_enc = int(rng.integers(0, cfg.ddim_steps))
        lo, hi = round(t_enc / cfg.ddim_steps * 1000), round((t_enc + 1) / cfg.ddim_steps * 1000)
        t_ddpm = torch.tensor([int(rng.integers(lo, max(hi, lo + 1)))])
        start = torch.as_tensor(rng.standard_normal((1, *shape)), dtype=torch.float32)
        c = emb_p_frozen if cond is None else cond
        z = ddim_partial(model, model.unet, c.detach(), emb_0, start, t_enc, cfg.ddim_steps, cfg.start_guidance)
        with torch.no_grad():
            e_0 = frozen_unet(z, t_ddpm, encoder_hidden_states=emb_0).sample
            e_p = frozen_unet(z, t_ddpm, encoder_hidden_states=emb_p_frozen).sample
        e_n = model.unet(z, t_ddpm, encoder_hidden_states=c).sample
        return torch.nn.functional.mse_loss(e_n, e_0 - cfg.negative_guidance * (e_p - e_0))

    return loss


class ESD:
    name = "esd"
    modality = "diffusion"
    Config = Config

    def unlearn(self, model, task, config: Config, *, data, progress: bool = True):
        import copy

        from unlearnbench.baselines.diffusion_loop import resolve_scaled, resolve_seed, train

        resolve_scaled(config, task, "esd", PAPER)
        resolve_seed(config)
        if config.variant == "auto":
            config.variant = "x" if task.settings.get("domain") == "style" else "u"
        out = model.clone()
        frozen = copy.deepcopy(out.unet).eval()
        rng = np.random.default_rng(config.seed)
        loss = esd_loss_fn(out, frozen, data["concept"], config, rng)
        train(esd_parameters(out.unet, config.variant), [out.unet, out.text_encoder], loss, steps=config.iterations,
              lr=config.lr, progress=progress, desc=f"ESD-{config.variant} '{data['concept']}'")
        out.mark_modified(f"esd-{config.variant}")
        return out


register_method("esd", "diffusion", ESD, description="ESD-x / ESD-u negative-guidance fine-tuning",
                paper="Gandikota et al., Erasing Concepts from Diffusion Models, ICCV 2023")
