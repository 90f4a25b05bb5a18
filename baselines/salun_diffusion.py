"""SalUn for diffusion (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based
Weight Saliency in Both Image Classification and Generation", ICLR 2024).

1. Saliency mask: ``m = 1[|grad_theta L_forget| >= quantile(|grad|, 1 - mask_ratio)]`` over the
   UNet weights, with ``L_forget`` the diffusion loss on images of the concept with their prompts.
2. Random-label unlearning on the masked weights only: images of the concept, noised, must be
   denoised as if prompted with another concept ``c'`` (a random retain concept, or ``""``),
   while the retain images keep the ordinary diffusion loss::

       L = || eps_theta(x_t^f, c_f, t) - sg[eps_theta(x_t^f, c', t)] ||^2 + alpha * || eps_theta(x_t^r, c_r, t) - eps ||^2

   (``SD/train-scripts/random_label.py`` in their code). Unmasked weights stay bit-identical
   (the shared loop restores them after every step; tested).

Data: the task's images of the concept (embedded worlds) or, for prompt-only tasks,
images the model itself generates for the forget / retain prompts (as SalUn does for SD).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.unlearning import register_method

PAPER = {"iterations": 1000, "lr": 1e-5}


@dataclass
class Config:
    mask_ratio: float = 0.5  # fraction of UNet weights updated (SalUn SD experiments: 50 %)
    alpha: float = 1.0  # retain-loss weight (our default)
    iterations: int | None = None  # None: paper-scale 1000 steps or the world's scaled value
    lr: float | None = None  # 1e-5 (SalUn SD)
    batch: int = 8
    seed: int | None = None  # None: the run's seed (--seed)


def saliency_masks(model, x0, cond, ratio: float, seed: int = 0) -> dict:
    """Boolean masks (True = trainable) of the top ``ratio`` |gradient| UNet entries."""
    import torch

    from unlearnbench.baselines.diffusion_loop import add_noise

    g = torch.Generator().manual_seed(seed)
    unet = model.unet
    unet.requires_grad_(True)
    unet.zero_grad(set_to_none=True)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, 1000, (x0.shape[0],), generator=g)
    loss = torch.nn.functional.mse_loss(unet(add_noise(model, x0, noise, t), t, encoder_hidden_states=cond).sample, noise)
    loss.backward()
    grads = {n: p.grad.detach().abs() for n, p in unet.named_parameters() if p.grad is not None}
    flat = torch.cat([v.flatten() for v in grads.values()])
    k = max(1, int(round(ratio * flat.numel())))
    thresh = torch.topk(flat, k).values.min()
    unet.zero_grad(set_to_none=True)
    unet.requires_grad_(False)
    return {n: v >= thresh for n, v in grads.items()}


def _images(model, task, data, key_img, prompts, seed):
    if data.get(key_img) is not None:
        return np.asarray(data[key_img]), list(data[key_img.replace("images", "captions")])
    if not prompts:
        return None, []
    from unlearnbench.tasks.diffusion_protocol import generate

    rows = [{"prompt": p, "seed": seed + i, "guidance": 7.5} for i, p in enumerate(prompts[:16])]
    return np.stack(generate(task, model, rows)), [r["prompt"] for r in rows]


class SalUnDiffusion:
    name = "salun"
    modality = "diffusion"
    Config = Config

    def unlearn(self, model, task, config: Config, *, data, progress: bool = True):
        import torch

        from unlearnbench.baselines.diffusion_loop import add_noise, encode, images_to_latents, resolve_scaled, resolve_seed, train

        resolve_scaled(config, task, "salun", PAPER)
        resolve_seed(config)
        out = model.clone()
        f_img, f_cap = _images(out, task, data, "concept_images", data.get("forget"), config.seed)
        r_img, r_cap = _images(out, task, data, "retain_images", data.get("retain"), config.seed + 10_000)
        if f_img is None:
            from unlearnbench.errors import UserError

            raise UserError(f"salun needs forget prompts or images for {task.name}")
        xf = images_to_latents(out, f_img)
        xr = images_to_latents(out, r_img) if r_img is not None else None
        concept, others = data["concept"], list(data.get("retain_concepts") or [])
        pseudo = [c.replace(concept, others[i % len(others)]) if others else data.get("anchor", "") for i, c in enumerate(f_cap)]
        ef, ep = encode(out, f_cap), encode(out, pseudo)
        er = encode(out, r_cap) if xr is not None else None
        masks = saliency_masks(out, xf, ef, config.mask_ratio, config.seed)
        rng = np.random.default_rng(config.seed)
        g = torch.Generator().manual_seed(config.seed)

        def loss(step: int):
            i = torch.as_tensor(rng.integers(0, len(xf), config.batch))
            j = torch.as_tensor(rng.integers(0, len(xf), config.batch))
            t = torch.randint(0, 1000, (config.batch,), generator=g)
            noise = torch.randn(xf[i].shape, generator=g)
            xt = add_noise(out, xf[i], noise, t)
            with torch.no_grad():
                target = out.unet(xt, t, encoder_hidden_states=ep[j]).sample
            total = torch.nn.functional.mse_loss(out.unet(xt, t, encoder_hidden_states=ef[i]).sample, target)
            if xr is not None and config.alpha > 0:
                k = torch.as_tensor(rng.integers(0, len(xr), config.batch))
                nr = torch.randn(xr[k].shape, generator=g)
                pred = out.unet(add_noise(out, xr[k], nr, t), t, encoder_hidden_states=er[k]).sample
                total = total + config.alpha * torch.nn.functional.mse_loss(pred, nr)
            return total

        params = [(n, p) for n, p in out.unet.named_parameters() if n in masks]
        train(params, [out.unet, out.text_encoder], loss, steps=config.iterations, lr=config.lr, masks=masks,
              progress=progress, desc="SalUn (diffusion)")
        out.mark_modified("salun")
        out.salun_masks = masks  # kept for inspection and tests
        return out


register_method("salun", "diffusion", SalUnDiffusion, description="saliency-masked random-label diffusion unlearning",
                paper="Fan et al., SalUn, ICLR 2024")
