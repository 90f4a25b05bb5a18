"""Tiny model builders for the diffusion track: a word-level CLIP tokenizer written as local
vocab/merges files, a tiny latent Stable-Diffusion pipeline (AutoencoderKL + CLIPTextModel +
UNet2DConditionModel + DDIM), the mini-canvas judge CNN and a tiny open_clip model.

Everything here is built from local files only (no hub). The tiny SD pipeline is a real
``StableDiffusionPipeline``: it saves with ``save_pretrained`` and reloads with
``DiffusionPipeline.from_pretrained(folder)``, so the world and SD v1.4 share every code path.
Heavy imports happen inside functions (registration modules stay light).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

_SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def write_clip_tokenizer(words: Sequence[str], folder: str | Path, max_length: int = 16) -> Path:
    """Write ``vocab.json`` + ``merges.txt`` so that ``CLIPTokenizer`` maps each word to one token.

    CLIP's BPE marks the end of a word with ``</w>``; for every word we add the merges that
    glue its characters left to right, plus every single character (so unknown words still
    tokenize, character by character). Returns the folder (a ``CLIPTokenizer.from_pretrained`` dir).
    """
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w.lower() for text in words for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]", text.lower())})
    vocab: dict[str, int] = {}
    for ch in sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")):
        for tok in (ch, ch + "</w>"):
            vocab.setdefault(tok, len(vocab))
    merges: list[str] = []
    seen = set()
    for w in words:
        syms = list(w[:-1]) + [w[-1] + "</w>"]
        cur = syms[0]
        for s in syms[1:]:
            pair = f"{cur} {s}"
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            cur = cur + s
            vocab.setdefault(cur, len(vocab))
    for sp in _SPECIAL:
        vocab.setdefault(sp, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length,
                        pad_token="<|endoftext|>")
    tok.save_pretrained(str(folder))
    return folder


def tiny_components(tokenizer_dir: str | Path, *, image_size: int = 16, text_width: int = 64,
                    unet_channels: tuple[int, int] = (32, 64), seed: int = 0) -> dict:
    """Randomly initialised components of a tiny latent SD pipeline (VAE downsamples by 2)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=8, sample_size=image_size)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=2 * text_width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(
        sample_size=image_size // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=tuple(unet_channels), norm_num_groups=8, cross_attention_dim=text_width,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8)
    # Stable Diffusion v1's noise schedule (scaled_linear 0.00085 -> 0.012, 1000 steps).
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet, "scheduler": scheduler}


def assemble_pipeline(components: dict):
    """A ``StableDiffusionPipeline`` without safety checker from tiny components."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def tiny_random_pipeline(folder: str | Path, words: Sequence[str] = ("a", "photo", "of", "cat", "dog", "nude"),
                         image_size: int = 16, seed: int = 0) -> Path:
    """Build, save and return a tiny random SD pipeline folder (tests, smoke runs)."""
    folder = Path(folder)
    tok_dir = write_clip_tokenizer(words, folder / "_tokenizer_src")
    pipe = assemble_pipeline(tiny_components(tok_dir, image_size=image_size, seed=seed))
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


# -- judges ----------------------------------------------------------------------------------
def judge_cnn(n_classes: int, width: int = 16):
    """The mini-canvas classifier (style or object): 3 conv blocks, global pool, linear head.

    ``forward(x)`` takes float images in [0, 1], NCHW; ``features(x)`` is the pooled
    penultimate layer (used as the FID feature space offline).
    """
    import torch
    from torch import nn

    class JudgeCNN(nn.Module):
        def __init__(self):
            super().__init__()
            c = width
            self.body = nn.Sequential(
                nn.Conv2d(3, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(),
                nn.Conv2d(c, c, 3, padding=1, stride=2), nn.GroupNorm(8, c), nn.SiLU(),
                nn.Conv2d(c, 2 * c, 3, padding=1, stride=2), nn.GroupNorm(8, 2 * c), nn.SiLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(2 * c, n_classes)

        def features(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.body(x * 2 - 1)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.head(self.features(x))

    return JudgeCNN()


def tiny_open_clip(image_size: int = 16, embed_dim: int = 32, context_length: int = 16):
    """A tiny open_clip ``CLIP`` (ViT 2 layers, text transformer 2 layers) with open_clip's own BPE tokenizer."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=4, image_size=image_size)
    text = CLIPTextCfg(context_length=context_length, vocab_size=49408, width=64, heads=2, layers=2)
    return CLIP(embed_dim=embed_dim, vision_cfg=vision, text_cfg=text)


def open_clip_tokenizer(context_length: int = 16):
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)
