"""Diffusion baselines on a tiny random SD pipeline: what each method may change, closed forms
against independent NumPy solutions, SalUn's frozen weights bit-identical, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.spec import TaskSpec




@pytest.fixture(scope="module")
def base(tiny_sd_dir):
    from unlearnbench.image_generator import load_image_generator
    return load_image_generator(str(tiny_sd_dir), device="cpu")


TASK = TaskSpec(name="test/diffusion-style", modality="diffusion", protocol="diffusion",
                settings={"domain": "style", "concept": "sunset", "steps": 2,
                          "method_scale": {"esd": {"iterations": 2, "lr": 1e-3, "ddim_steps": 3},
                                           "salun": {"iterations": 3, "lr": 1e-2},
                                           "advunlearn": {"iterations": 2, "lr": 1e-3, "attack_steps": 2, "ddim_steps": 3}}})


def _data(n=6):
    rng = np.random.default_rng(0)
    return {"concept": "sunset style", "retain_concepts": ["ocean style", "ink style"], "anchor": "",
            "forget": ["a circle in sunset style"], "retain": ["a circle in ocean style"],
            "concept_images": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
            "concept_captions": ["a circle in sunset style"] * n,
            "retain_images": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
            "retain_captions": ["a circle in ocean style"] * n}


def _run(name, base, **over):
    from unlearnbench.unlearning import get_method, make_config

    m = get_method(name, "diffusion")
    cfg = make_config(m, over)
    return m.unlearn(base, TASK, cfg, data=_data(), progress=False), cfg


def _changed(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return {k for k in sa if not torch.equal(sa[k], sb[k])}


@pytest.mark.parametrize("variant", ["x", "u"])
def test_esd_trains_only_its_parameters_and_is_deterministic(base, variant):
    out, cfg = _run("esd", base, variant=variant)
    assert cfg.iterations == 2 and cfg.lr == 1e-3  # the task's scaled schedule is recorded
    changed = _changed(out.unet, base.unet)
    assert changed and not _changed(out.text_encoder, base.text_encoder)
    assert all(("attn2" in k) == (variant == "x") for k in changed)
    if variant == "x":  # same seed, same weights
        again, _ = _run("esd", base, variant=variant)
        assert not _changed(out.unet, again.unet)
    assert out.describe()["weights_sha256"] != base.describe()["weights_sha256"]


def test_salun_masked_weights_bit_identical(base):
    out, cfg = _run("salun", base)
    masks = out.salun_masks
    frac = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert 0.45 < frac < 0.55
    before, after = base.unet.state_dict(), out.unet.state_dict()
    moved = 0
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], before[name][~mask]), name
        moved += int((after[name][mask] != before[name][mask]).sum())
    assert moved > 0


def _uce_reference(w, erase, preserve, lamb, ps):
    """Independent solution: W' minimises sum||W'c - W c*||^2 + ps sum||W'c_p - W c_p||^2 + lamb||W' - W||^2."""
    rows_a, rows_b = [], []
    for c, cs in erase:
        rows_a.append(c)
        rows_b.append(cs @ w.T)
    for c in preserve:
        rows_a.append(np.sqrt(ps) * c)
        rows_b.append(np.sqrt(ps) * c @ w.T)
    rows_a.append(np.sqrt(lamb) * np.eye(w.shape[1]))
    rows_b.append(np.sqrt(lamb) * w.T)
    sol, *_ = np.linalg.lstsq(np.concatenate(rows_a), np.concatenate(rows_b), rcond=None)
    return sol.T


def test_uce_matches_least_squares_and_only_edits_cross_attention(base):
    from unlearnbench.baselines.uce import concept_tokens, cross_attention_projections

    out, cfg = _run("uce", base)
    changed = _changed(out.unet, base.unet)
    assert changed and all(k.endswith(("attn2.to_k.weight", "attn2.to_v.weight")) for k in changed)
    c = concept_tokens(base, "sunset style").numpy()
    cs = concept_tokens(base, "", n=c.shape[0]).numpy()
    pres = [concept_tokens(base, p).numpy() for p in ("ocean style", "ink style")]
    name, lin = cross_attention_projections(base.unet)[0]
    ref = _uce_reference(lin.weight.detach().double().numpy(), [(c, cs)], pres, 0.1, 0.5)
    got = dict(out.unet.named_modules())[name].weight.detach().double().numpy()
    assert np.allclose(got, ref, atol=1e-4)


def test_rece_adversarial_embedding_solves_its_normal_equations(base):
    from unlearnbench.baselines.rece import adversarial_embedding
    from unlearnbench.baselines.uce import closed_form_edit, concept_tokens, cross_attention_projections

    ed = base.clone()
    c = concept_tokens(ed, "sunset style")
    originals = closed_form_edit(ed.unet, [(c, concept_tokens(ed, "", n=c.shape[0]))], [], lamb=0.1, erase_scale=1.0,
                                 preserve_scale=0.1)
    e = adversarial_embedding(ed.unet, originals, c, 0.1).numpy()
    ws = [(lin.weight.detach().double().numpy(), originals[n].numpy()) for n, lin in cross_attention_projections(ed.unet)]
    grad = sum(wn.T @ (wn @ e.T - wo @ c.numpy().T) for wn, wo in ws) + 0.1 * e.T  # d/de of the objective / 2
    assert np.abs(grad).max() < 1e-6
    out, _ = _run("rece", base, epochs=2)
    assert _changed(out.unet, ed.unet)  # later rounds move the weights further


def test_advunlearn_trains_only_the_text_encoder(base):
    out, cfg = _run("advunlearn", base)
    assert _changed(out.text_encoder, base.text_encoder)
    assert not _changed(out.unet, base.unet)
    assert cfg.attack_steps == 2


def test_unlearndiffatk_pieces():
    from unlearnbench.baselines.unlearndiffatk import project_simplex

    rng = np.random.default_rng(0)
    v = torch.as_tensor(rng.normal(size=(3, 20)))
    p = project_simplex(v, xi=1e-9).numpy()
    # independent: the sort-based simplex projection (Duchi et al. 2008)
    for row, got in zip(v.numpy(), p):
        u = np.sort(row)[::-1]
        css = np.cumsum(u)
        rho = np.nonzero(u * np.arange(1, len(u) + 1) > (css - 1))[0][-1]
        theta = (css[rho] - 1) / (rho + 1.0)
        assert np.allclose(got, np.maximum(row - theta, 0), atol=1e-6)


def test_text_forward_embeds_equals_text_encoder(base):
    from unlearnbench.baselines.unlearndiffatk import text_forward_embeds

    ids = base.tokenizer(["a circle in ink style"], padding="max_length", max_length=base.tokenizer.model_max_length,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        a = base.text_encoder(ids)[0]
        b = text_forward_embeds(base.text_encoder, base.text_encoder.get_input_embeddings()(ids))
    assert torch.allclose(a, b, atol=1e-6)
