"""Training recipes of the mini-canvas world: VAE, text-to-image (text encoder + UNet), judges, tiny CLIP.

Plain loops with AdamW; every function is deterministic for a given seed (CPU, fixed batch order)
and shows a progress bar. Images are float tensors ``[N, 3, S, S]`` in [0, 1].
"""

from __future__ import annotations

import numpy as np


def _bar(total: int, desc: str, progress: bool):
    from unlearnbench.progress import bar

    return bar(total, desc, progress=progress)  # off under --quiet, also in a world build


def _batches(n: int, batch: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield rng.integers(0, n, size=min(batch, n))


def train_vae(vae, images, *, steps: int, batch: int = 64, lr: float = 2e-3, kl_weight: float = 1e-6, seed: int = 0,
              progress: bool = True):
    """Autoencoder training (reconstruction MSE + a small KL, as SD's VAE without the GAN term).

    Sets ``vae.config.scaling_factor`` to 1/std of the latents (SD v1 uses 0.18215 for its VAE).
    """
    import torch

    torch.manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    x_all = images * 2 - 1
    bar = _bar(steps, "mini-canvas: VAE", progress)
    vae.train()
    for idx in _batches(len(x_all), batch, steps, seed):
        x = x_all[torch.as_tensor(idx)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        loss = torch.nn.functional.mse_loss(rec, x) + kl_weight * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(x_all[i:i + 256]).latent_dist.mean for i in range(0, len(x_all), 256)])
    vae.register_to_config(scaling_factor=float(1.0 / lat.std()))
    return vae


def encode_latents(vae, images):
    import torch

    with torch.no_grad():
        lat = torch.cat([vae.encode(images[i:i + 256] * 2 - 1).latent_dist.mean for i in range(0, len(images), 256)])
    return lat * vae.config.scaling_factor


def reconstruct(vae, images):
    """``images`` ([0, 1], NCHW) through the VAE (posterior mean), back in [0, 1]."""
    import torch

    with torch.no_grad():
        out = [vae.decode(vae.encode(images[i:i + 256] * 2 - 1).latent_dist.mean).sample
               for i in range(0, len(images), 256)]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


def train_text_to_image(unet, text_encoder, tokenizer, latents, captions, *, steps: int, batch: int = 64,
                        lr: float = 1e-3, cond_drop: float = 0.1, min_snr_gamma: float | None = None, seed: int = 0,
                        progress: bool = True, desc: str = "mini-canvas: text-to-image"):
    """Latent diffusion training from scratch: eps-prediction MSE on DDPM-noised latents
    (Rombach et al. 2022, SD v1 schedule), text encoder trained jointly, captions dropped to ""
    with probability ``cond_drop`` for classifier-free guidance (Ho & Salimans 2022).
    ``min_snr_gamma``: per-sample weight min(SNR_t, gamma) / SNR_t (Hang et al., "Efficient
    Diffusion Training via Min-SNR Weighting Strategy", ICCV 2023), which on mini-canvas makes the
    object token steer the shape within the step budget (without it the seed decides the shape)."""
    import torch
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    warm = max(1, steps // 20)
    lr_at = lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps)))  # noqa: E731
    ids_all = tokenizer(list(captions) + [""], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
    empty = ids_all[-1]
    ids_all = ids_all[:-1]
    g = torch.Generator().manual_seed(seed)
    unet.train()
    text_encoder.train()
    bar = _bar(steps, desc, progress)
    for step, idx in enumerate(_batches(len(latents), batch, steps, seed)):
        for group in opt.param_groups:
            group["lr"] = lr * lr_at(step)
        idx = torch.as_tensor(idx)
        x0 = latents[idx]
        ids = ids_all[idx].clone()
        drop = torch.rand(len(idx), generator=g) < cond_drop
        ids[drop] = empty
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (len(idx),), generator=g)
        xt = sched.add_noise(x0, noise, t)
        cond = text_encoder(ids)[0]
        err = (unet(xt, t, encoder_hidden_states=cond).sample - noise).pow(2).mean((1, 2, 3))
        if min_snr_gamma:  # Min-SNR-gamma weighting for eps-prediction: min(SNR, gamma) / SNR (Hang et al. 2023)
            snr = sched.alphas_cumprod[t] / (1 - sched.alphas_cumprod[t])
            err = err * torch.clamp(snr, max=min_snr_gamma) / snr
        loss = err.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    unet.eval()
    text_encoder.eval()


def augment(x, g):
    """Judge augmentation: small shifts and pixel noise, so judges transfer to generated images."""
    import torch

    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return (x + 0.06 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def train_classifier(model, images, labels, *, steps: int, batch: int = 64, lr: float = 3e-3, seed: int = 0,
                     progress: bool = True, desc: str = "mini-canvas: judge"):
    import torch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    y_all = torch.as_tensor(labels)
    model.train()
    bar = _bar(steps, desc, progress)
    for idx in _batches(len(images), batch, steps, seed):
        idx = torch.as_tensor(idx)
        loss = torch.nn.functional.cross_entropy(model(augment(images[idx], g)), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
    bar.close()
    model.eval()
    return model


def train_clip(model, tokenizer, images, captions, *, steps: int, batch: int = 64, lr: float = 1e-3, seed: int = 0,
               progress: bool = True):
    """Contrastive (InfoNCE, symmetric) training of the tiny open_clip model (Radford et al. 2021)."""
    import torch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    tokens = tokenizer(list(captions))
    model.train()
    bar = _bar(steps, "mini-canvas: tiny CLIP", progress)
    for idx in _batches(len(images), batch, steps, seed):
        idx = torch.as_tensor(idx)
        caps = [captions[i] for i in idx.tolist()]
        # one image per distinct caption in the batch (duplicates would be false negatives)
        first = {c: k for k, c in reversed(list(enumerate(caps)))}
        keep = torch.as_tensor(sorted(first.values()))
        sel = idx[keep]
        img_f = model.encode_image(augment(images[sel], g), normalize=True)
        txt_f = model.encode_text(tokens[sel], normalize=True)
        logits = model.logit_scale.exp() * img_f @ txt_f.T
        target = torch.arange(len(sel))
        loss = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
    bar.close()
    model.eval()
    return model
