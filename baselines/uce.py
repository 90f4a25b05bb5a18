"""UCE: Unified Concept Editing (Gandikota et al., "Unified Concept Editing in Diffusion Models", WACV 2024).

A closed-form edit of every cross-attention key and value projection ``W`` (``attn2.to_k``,
``attn2.to_v``) of the UNet: with concept token embeddings ``c_i`` to erase, their
destinations ``c*_i`` (the guide prompt, default ``""``), preserved concepts ``c_j`` and
ridge weight ``lambda``,

    W' = ( sum_i W c*_i c_i^T + s_p sum_j W c_j c_j^T + lambda W )
         ( sum_i c_i c_i^T    + s_p sum_j c_j c_j^T   + lambda I )^-1 .

Token embeddings are the text encoder's outputs at the concept's token positions (after
BOS, through EOS); the destination uses the guide prompt's outputs at the same positions.
Defaults follow the released ``train-scripts/train_erase.py``: ``lamb=0.1``, erase scale 1,
preserve scale ``max(0.1, 1/len(preserve))``. Preserved concepts: the task's other concepts
(``settings['retain_concepts']``). No training loop: the edit is exact linear algebra.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.unlearning import register_method


@dataclass
class Config:
    guide: str = ""  # destination concept ("" for nudity/objects; UCE uses "art" for artists)
    lamb: float = 0.1  # ridge weight lambda (train_erase.py)
    erase_scale: float = 1.0  # (train_erase.py)
    preserve_scale: float | None = None  # None: max(0.1, 1/len(preserve)) (train_erase.py)
    preserve: bool = True  # preserve the task's other concepts


def concept_tokens(model, text: str, n: int | None = None):
    """Text-encoder outputs ``[n, D]`` at positions 1..n (n = the text's tokens incl. EOS by default)."""
    from unlearnbench.baselines.diffusion_loop import encode

    k = len(model.tokenizer(text).input_ids) - 1 if n is None else n
    return encode(model, [text])[0, 1:1 + k].double()


def cross_attention_projections(unet):
    """(name, Linear) of every cross-attention key and value projection."""
    out = [(n, m) for n, m in unet.named_modules() if n.endswith(("attn2.to_k", "attn2.to_v"))]
    if not out:
        from unlearnbench.errors import UserError

        raise UserError("the UNet has no cross-attention (attn2) layers to edit")
    return out


def closed_form_edit(unet, erase: list, preserve: list, *, lamb: float, erase_scale: float,
                     preserve_scale: float, originals: dict | None = None) -> dict:
    """Apply the UCE edit in place; ``erase`` = [(c [n, D], c_star [n, D])], ``preserve`` = [c [n, D]].

    ``originals`` (name -> original W) makes every destination use the unedited weights, as
    RECE's repeated edits do. Returns the originals used.
    """
    import torch

    originals = originals or {}
    for name, lin in cross_attention_projections(unet):
        w0 = originals.setdefault(name, lin.weight.detach().double().clone())
        d_in = w0.shape[1]
        mat1 = lamb * w0.clone()
        mat2 = lamb * torch.eye(d_in, dtype=torch.float64)
        for c, c_star in erase:
            mat1 += erase_scale * (w0 @ c_star.T) @ c
            mat2 += erase_scale * c.T @ c
        for c in preserve:
            mat1 += preserve_scale * (w0 @ c.T) @ c
            mat2 += preserve_scale * c.T @ c
        with torch.no_grad():
            lin.weight.copy_((mat1 @ torch.linalg.inv(mat2)).to(lin.weight.dtype))
    return originals


def uce_sets(model, data: dict, cfg) -> tuple[list, list, float]:
    c = concept_tokens(model, data["concept"])
    erase = [(c, concept_tokens(model, cfg.guide, n=c.shape[0]))]
    preserve = [concept_tokens(model, p) for p in (data.get("retain_concepts") or [])] if cfg.preserve else []
    ps = cfg.preserve_scale if cfg.preserve_scale is not None else max(0.1, 1.0 / max(1, len(preserve)))
    return erase, preserve, ps


class UCE:
    name = "uce"
    modality = "diffusion"
    Config = Config

    def unlearn(self, model, task, config: Config, *, data, progress: bool = True):
        out = model.clone()
        erase, preserve, ps = uce_sets(out, data, config)
        closed_form_edit(out.unet, erase, preserve, lamb=config.lamb, erase_scale=config.erase_scale, preserve_scale=ps)
        out.mark_modified("uce")
        return out


register_method("uce", "diffusion", UCE, description="closed-form cross-attention edit (erase + preserve)",
                paper="Gandikota et al., Unified Concept Editing in Diffusion Models, WACV 2024")
