"""UnlearnDiffAtk (Zhang et al., "To Generate or Not? Safety-Driven Unlearned Diffusion Models Are
Still Easy To Generate Unsafe Images ... For Now", ECCV 2024): ATTACKS ``unlearndiffatk``.

For each forget prompt, ``k`` adversarial tokens are prepended. Each is a distribution over
the vocabulary (projected onto the simplex by bisection); a straight-through random one-hot
sample of it picks token embeddings. The attack minimises the *unlearned* model's denoising
error on an image of the erased concept,

    min_{adv}  E_eps || eps_theta(x_t(x0, eps), t, TE([adv ; prompt])) - eps ||^2,

sweeping the timesteps ``sampled_t`` (``n_timesteps`` evenly spread, as the released
``classifier_.py``) with ``iterations`` Adam steps each (lr 1e-2, weight decay 0.1,
``text_grad_.py``), and after each timestep generates the image with the argmax tokens and
the prompt's seed and guidance; it stops at the first success. Success is judged by the
task's judge (NudeNet for nudity, the concept classifier for styles/objects). A prompt whose
plain image already shows the concept counts as a success without attack (as the repo).

Target images ``x0``: the task's images of the concept when it has them (embedded worlds),
else images generated for each prompt and seed by ``config.target_model`` (the original,
not-unlearned pipeline, as UnlearnDiffAtk builds its attack set with SD v1.4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.registry import ATTACKS


@dataclass
class Config:
    k: int = 5  # prepended adversarial tokens (paper: prefix of 5 tokens)
    lr: float = 1e-2  # Adam lr (text_grad_.py)
    weight_decay: float = 0.1  # Adam weight decay (text_grad_.py)
    n_timesteps: int = 50  # sampled_t: timesteps swept (classifier_.py n_samples)
    iterations: int = 40  # optimisation steps per timestep (our default; scaled down on embedded worlds)
    target_model: str | None = None  # pipeline making target images when the task has none
    max_prompts: int | None = None  # attack only the first N forget prompts
    seed: int = 0


def project_simplex(v, xi: float = 1e-5):
    """Row-wise Euclidean projection onto the probability simplex {u in [0,1]^V, sum u = 1}."""
    import torch

    out = []
    for row in v:
        lo, hi = float(row.min() - 1), float(row.max())
        while hi - lo > xi:
            mu = (lo + hi) / 2
            if float(torch.clip(row - mu, 0, 1).sum()) > 1:
                lo = mu
            else:
                hi = mu
        out.append(torch.clip(row - (lo + hi) / 2, 0, 1))
    return torch.stack(out)


def ste_sample(dist, gen):
    """Straight-through random one-hot sample of ``dist`` rows; the gradient passes through
    hardtanh-clipped (STERandSelect in Diffusion-MU-Attack ``text_grad_.py``)."""
    import torch

    idx = torch.multinomial(dist.detach().clamp_min(0) + 1e-12, 1, generator=gen).view(-1)
    hard = torch.nn.functional.one_hot(idx, dist.shape[-1]).to(dist.dtype)
    soft = dist * 1.0
    if soft.requires_grad:
        soft.register_hook(torch.nn.functional.hardtanh)
    return hard + soft - soft.detach()


def text_forward_embeds(text_encoder, token_embeds):
    """CLIP text encoder outputs from token embeddings ``[B, L, D]`` (positions added, causal mask)."""
    import torch

    tm = getattr(text_encoder, "text_model", text_encoder)
    hidden = tm.embeddings(inputs_embeds=token_embeds)
    n = hidden.shape[1]
    mask = torch.full((n, n), float("-inf"), dtype=hidden.dtype, device=hidden.device).triu(1)[None, None]
    out = tm.encoder(inputs_embeds=hidden, attention_mask=mask)
    return tm.final_layer_norm(out[0] if isinstance(out, tuple) else out.last_hidden_state)


def _judge_success(task, judge, images) -> list[bool]:
    which = task.settings.get("attack_judge")
    if which == "nudity":
        from unlearnbench.metrics.diffusion import NUDITY_CONVENTIONS, nude_flags

        conv = NUDITY_CONVENTIONS[task.settings.get("nudity_convention", "unlearndiffatk")]
        return [bool(f) for f in nude_flags(judge.detect_nudity(images), conv["classes"], conv["threshold"])]
    if which in ("style", "object"):
        return [p == task.settings["concept"] for p in judge.classify(images)[which]]
    raise UserError(f"task {task.name} names no attack judge")


def _prefixed_ids(model, prompt: str, adv_ids):
    """[BOS] adv_1..k prompt-tokens [EOS] padded/truncated to the tokenizer's length."""
    import torch

    tok = model.tokenizer
    ids = tok(prompt, truncation=True, max_length=tok.model_max_length).input_ids
    body = ids[1:-1]
    seq = [ids[0]] + [int(a) for a in adv_ids] + body
    seq = seq[: tok.model_max_length - 1] + [tok.eos_token_id]
    seq += [tok.pad_token_id] * (tok.model_max_length - len(seq))
    return torch.tensor([seq])


def unlearndiffatk_attack(task, model, *, config: Config | None = None, progress: bool = False) -> dict:
    """Run UnlearnDiffAtk on ``task``'s forget prompts; return ``{"rows", "metrics", "config"}``."""
    import torch

    from unlearnbench.baselines.diffusion_loop import add_noise, images_to_latents
    from unlearnbench.metric import mean_stderr, metric_value
    from unlearnbench.metrics.diffusion import attack_asr
    from unlearnbench.tasks.diffusion_protocol import generate, resolve, task_judge, task_prompts

    cfg = config or Config()
    prompts = [p for p in task_prompts(task) if p["split"] == "forget"][: cfg.max_prompts]
    if not prompts:
        raise UserError(f"task {task.name} has no forget prompts to attack")
    judge = task_judge(task)
    targets = None
    if task.settings.get("training_data"):
        targets = resolve(task.settings["training_data"])(task).get("concept_images")
    if targets is None:
        if not cfg.target_model:
            raise UserError("UnlearnDiffAtk needs images of the concept: set config.target_model to the original pipeline")
        from unlearnbench.runner import load_model

        targets = generate(task, load_model(task, cfg.target_model), prompts)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    te, unet = model.text_encoder, model.unet
    te.requires_grad_(False)
    unet.requires_grad_(False)
    table = te.get_input_embeddings().weight.detach()  # [V, D]
    steps = int(task.settings.get("steps", 50))
    sampled_t = list(range(1000 // cfg.n_timesteps // 2, 1000, 1000 // cfg.n_timesteps))[: cfg.n_timesteps]
    before = generate(task, model, prompts)
    ok_before = _judge_success(task, judge, np.stack(before)) if len({b.shape for b in before}) == 1 else [
        _judge_success(task, judge, b[None])[0] for b in before]
    rows = []
    from tqdm.auto import tqdm

    for i, p in enumerate(tqdm(prompts, desc="UnlearnDiffAtk", disable=not progress, leave=False)):
        row = {"index": p["index"], "prompt": p["prompt"], "seed": p["seed"], "success_before": bool(ok_before[i]),
               "success_after": bool(ok_before[i]), "adv_prompt": None, "timesteps_used": 0}
        if not ok_before[i]:
            x0 = images_to_latents(model, np.asarray(targets[int(rng.integers(0, len(targets)))])[None])
            dist = project_simplex(torch.full((cfg.k, table.shape[0]), 1.0 / table.shape[0])).requires_grad_(True)
            opt = torch.optim.Adam([dist], lr=cfg.lr, weight_decay=cfg.weight_decay)
            base_ids = _prefixed_ids(model, p["prompt"], [0] * cfg.k)
            base_emb = te.get_input_embeddings()(base_ids).detach()
            for n_t, t in enumerate(sampled_t, 1):
                tt = torch.tensor([t])
                for _ in range(cfg.iterations):
                    noise = torch.randn(x0.shape, generator=gen)
                    adv = ste_sample(dist, gen) @ table
                    emb = torch.cat([base_emb[:, :1], adv[None], base_emb[:, 1 + cfg.k:]], 1)
                    pred = unet(add_noise(model, x0, noise, tt), tt, encoder_hidden_states=text_forward_embeds(te, emb)).sample
                    loss = torch.nn.functional.mse_loss(pred, noise)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    with torch.no_grad():
                        dist.copy_(project_simplex(dist))
                adv_ids = dist.detach().argmax(-1).tolist()
                ids = _prefixed_ids(model, p["prompt"], adv_ids)
                with torch.no_grad():
                    pe = te(ids)[0]
                img = generate(task, model, [p], prompt_embeds=pe)
                row["timesteps_used"] = n_t
                row["adv_prompt"] = " ".join(model.tokenizer.decode(adv_ids).replace("</w>", " ").split() + [p["prompt"]])
                if _judge_success(task, judge, np.stack(img))[0]:
                    row["success_after"] = True
                    break
        rows.append(row)
    pre = [r["success_before"] for r in rows]
    post = [r["success_after"] for r in rows]
    metrics = {
        "attack_asr/pre": metric_value(attack_asr(pre), False, len(pre), mean_stderr(100.0 * np.asarray(pre, float))[1]),
        "attack_asr/unlearndiffatk": metric_value(attack_asr(post), False, len(post),
                                                  mean_stderr(100.0 * np.asarray(post, float))[1]),
    }
    return {"rows": rows, "metrics": metrics, "config": asdict(cfg)}


ATTACKS.register("unlearndiffatk", "unlearnbench.baselines.unlearndiffatk:unlearndiffatk_attack", modality="diffusion",
                 description="adversarial prefix tokens that make an unlearned diffusion model regenerate the concept",
                 paper="Zhang et al., ECCV 2024 (UnlearnDiffAtk)")
