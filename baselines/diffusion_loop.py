"""The one shared training loop of the diffusion track, and its helpers.

A method file gives a loss closure and the parameters it trains; :func:`train` does the rest:
freezes every other weight, optimises with Adam (no weight decay, so nothing that gets no
gradient moves), applies an optional saliency mask (masked entries are restored after every
step, so they stay bit-identical whatever the optimizer does), and shows progress.

Helpers: text encoding, DDIM partial sampling (ESD's ``quick_sample_till_t``), noisy latents,
and the task-scaled hyper-parameters of embedded worlds (``resolve_scaled``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from unlearnbench.errors import UserError


def resolve_scaled(config, task, method: str, paper: dict) -> None:
    """Fill ``None`` fields of ``config`` in place: the task's scaled value (embedded worlds set
    ``settings['method_scale'][method]``), else the paper default. The record written beside the
    checkpoint then shows the values actually used."""
    scaled = dict((task.settings.get("method_scale") or {}).get(method, {}))
    for f in dataclasses.fields(config):
        if getattr(config, f.name) is None and f.name in paper:
            setattr(config, f.name, scaled.get(f.name, paper[f.name]))


def resolve_seed(config) -> int:
    """Set ``config.seed`` to the run's seed when it is None (``seed_everything`` seeds torch
    before ``unlearn``), so every random draw of the method (timesteps, noise, sampled latents,
    batches, the saliency batch) follows ``--seed``, and the record shows the seed used. An
    explicit ``--set seed=N`` wins."""
    import torch

    if config.seed is None:
        config.seed = int(torch.initial_seed() % (2**31))
    return int(config.seed)


def encode(model, prompts: list[str], grad: bool = False, text_encoder=None):
    """Text-encoder outputs ``[N, L, D]`` (padded to the tokenizer's max length)."""
    import torch

    te = text_encoder or model.text_encoder
    ids = model.tokenizer(list(prompts), padding="max_length", max_length=model.tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids.to(te.device)
    with torch.set_grad_enabled(grad):
        return te(ids)[0]


def latent_shape(model) -> tuple[int, int, int]:
    h, w = model.default_size()
    f = 2 ** (len(model.vae.config.block_out_channels) - 1)
    return model.unet.config.in_channels, h // f, w // f


def ddim_partial(model, unet, cond, uncond, start, t_stop: int, ddim_steps: int, guidance: float):
    """Run DDIM (eta=0) with CFG from noise ``start`` for ``t_stop`` of ``ddim_steps`` steps; return ``(z, t)``."""
    import torch
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(model.scheduler.config)
    sched.set_timesteps(ddim_steps)
    z = start * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps[:t_stop]:
            e = unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample
            eu, ec = e.chunk(2)
            z = sched.step(eu + guidance * (ec - eu), t, z).prev_sample
    return z


def add_noise(model, x0, noise, t):
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_config(model.scheduler.config)
    return sched.add_noise(x0, noise, t)


def images_to_latents(model, images_u8):
    """uint8 ``[N, H, W, 3]`` -> scaled VAE latents (posterior mean)."""
    import torch

    x = torch.as_tensor(np.asarray(images_u8, dtype=np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        lat = model.vae.encode(x.to(model.vae.device, model.vae.dtype)).latent_dist.mean
    return lat * model.vae.config.scaling_factor


def select(module, predicate: Callable[[str], bool]) -> list[tuple[str, object]]:
    params = [(n, p) for n, p in module.named_parameters() if predicate(n)]
    if not params:
        raise UserError("the method selected no parameters to train for this model")
    return params


def train(params: Iterable[tuple[str, object]], modules: Iterable, loss_fn: Callable[[int], object], *, steps: int,
          lr: float, masks: dict | None = None, progress: bool = True, desc: str = "unlearning") -> list[float]:
    """Optimise ``params`` (name, tensor) with Adam on ``loss_fn(step)``; everything else in ``modules`` is frozen.

    ``masks`` maps parameter names to boolean tensors: ``True`` entries train, ``False``
    entries are restored to their original bits after every step.
    """
    import torch
    from tqdm.auto import tqdm

    params = list(params)
    for m in modules:
        m.requires_grad_(False)
    for _, p in params:
        p.requires_grad_(True)
    frozen = {n: p.detach().clone() for n, p in params if masks and n in masks}
    opt = torch.optim.Adam([p for _, p in params], lr=lr, weight_decay=0.0)
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masks:
            for n, p in params:
                if n in masks and p.grad is not None:
                    p.grad.mul_(masks[n].to(p.grad.dtype))
        opt.step()
        if masks:
            with torch.no_grad():
                for n, p in params:
                    if n in frozen:
                        p.copy_(torch.where(masks[n], p, frozen[n]))
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    for m in modules:
        m.requires_grad_(False)
    return losses
