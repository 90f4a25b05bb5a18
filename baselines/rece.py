"""RECE: Reliable and Efficient Concept Erasure (Gong et al., ECCV 2024).

UCE leaves embeddings that still regenerate the concept. RECE alternates, for ``epochs`` rounds:

1. edit the cross-attention projections in closed form (UCE, :mod:`uce`), erasing the
   concept and every adversarial embedding found so far;
2. derive in closed form the embedding ``e'`` that the *edited* projections map closest to
   what the *original* ones made of the concept,
   ``e' = argmin_e sum_l ||W'_l e - W_l c||^2 + lambda ||e||^2
        = (sum_l W'_l^T W'_l + lambda I)^-1 sum_l W'_l^T W_l c``   (their eq. 6, keys and values),
   and add it to the erase set with the guide as destination.

The final model is the edit of the last round. ``reg_lambda`` is their ridge weight; the
preservation terms are UCE's (the task's other concepts).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.unlearning import register_method


@dataclass
class Config:
    epochs: int = 3  # rounds of derive + erase (our default; the paper reports a few rounds suffice)
    reg_lambda: float = 1e-1  # ridge weight of the adversarial-embedding derivation
    guide: str = ""
    lamb: float = 0.1  # UCE ridge weight
    erase_scale: float = 1.0
    preserve_scale: float | None = None
    preserve: bool = True


def adversarial_embedding(unet, originals: dict, c, reg_lambda: float):
    """Closed-form ``e'`` ([n, D]) for concept tokens ``c`` ([n, D])."""
    import torch

    from unlearnbench.baselines.uce import cross_attention_projections

    a = None
    b = None
    for name, lin in cross_attention_projections(unet):
        w_new = lin.weight.detach().double()
        w_old = originals[name]
        a = w_new.T @ w_new if a is None else a + w_new.T @ w_new
        b = w_new.T @ w_old if b is None else b + w_new.T @ w_old
    a = a + reg_lambda * torch.eye(a.shape[0], dtype=a.dtype)
    return (torch.linalg.solve(a, b @ c.T)).T


class RECE:
    name = "rece"
    modality = "diffusion"
    Config = Config

    def unlearn(self, model, task, config: Config, *, data, progress: bool = True):
        from unlearnbench.baselines.uce import closed_form_edit, uce_sets

        out = model.clone()
        erase, preserve, ps = uce_sets(out, data, config)
        c, guide = erase[0]
        originals = closed_form_edit(out.unet, erase, preserve, lamb=config.lamb, erase_scale=config.erase_scale,
                                     preserve_scale=ps)
        for _ in range(config.epochs):
            e_adv = adversarial_embedding(out.unet, originals, c, config.reg_lambda)
            erase.append((e_adv, guide))
            closed_form_edit(out.unet, erase, preserve, lamb=config.lamb, erase_scale=config.erase_scale,
                             preserve_scale=ps, originals=originals)
        out.mark_modified(f"rece-{config.epochs}")
        return out


register_method("rece", "diffusion", RECE, description="UCE + closed-form adversarial embeddings, repeated",
                paper="Gong et al., Reliable and Efficient Concept Erasure of Text-to-Image Diffusion Models, ECCV 2024")
