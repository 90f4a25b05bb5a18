"""mini-canvas world, UnlearnCanvas task shapes and the diffusion protocol's pure aggregation.

The fast tests never build the world; the end-to-end run (build, ESD, reference, attack)
is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

from unlearnbench.errors import UserError


def test_drawing_is_deterministic_and_concepts_differ():
    from unlearnbench.tasks.mini_canvas import RECIPES, dataset

    r = {"seed": 0, **RECIPES["test"]}
    a, b = dataset(r), dataset(r)
    assert np.array_equal(a["images"], b["images"]) and a["captions"] == b["captions"]
    x = a["images"]
    assert x.shape == (3 * 3 * r["per_pair"], 16, 16, 3) and x.min() >= 0 and x.max() <= 1
    style_means = [x[a["style"] == s].mean((0, 1, 2)) for s in range(3)]
    assert min(np.abs(style_means[i] - style_means[j]).sum() for i in range(3) for j in range(i)) > 0.2
    # objects of one style differ in shape: mean foreground masks differ
    one = a["style"] == 0
    masks = [np.abs(x[one & (a["object"] == o)] - x[one].mean(0)).mean() for o in range(3)]
    assert all(m > 0.01 for m in masks)
    assert a["captions"][0] == "a circle in sunset style"


def test_tokenizer_maps_each_world_word_to_one_token(tmp_path):
    from transformers import CLIPTokenizer

    from unlearnbench.tasks.mini_canvas_models import write_clip_tokenizer

    tok = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(["a circle in sunset style"], tmp_path)))
    assert tok.tokenize("a circle in sunset style") == ["a</w>", "circle</w>", "in</w>", "sunset</w>", "style</w>"]
    assert len(tok.tokenize("zebra")) > 1  # unknown words fall back to characters
    assert tok.model_max_length == 16


def test_task_families_and_user_errors():
    from unlearnbench.runner import get_task
    from unlearnbench.tasks import unlearncanvas

    t = get_task("mini-canvas/style/sunset")
    assert t.world == "mini-canvas" and t.settings["concept_text"] == "sunset style" and t.protocol == "diffusion"
    assert "ocean style" in t.settings["retain_concepts"] and "sunset style" not in t.settings["retain_concepts"]
    with pytest.raises(UserError, match="no style 'mauve'"):
        get_task("mini-canvas/style/mauve")
    u = get_task("unlearncanvas/style/Van_Gogh")
    rows = unlearncanvas.prompts(u)
    assert len(rows) == 51 * 20 * 5 and len([r for r in rows if r["split"] == "forget"]) == 20 * 5
    assert rows[0]["prompt"] == "A Architectures image in Abstractionism style." and rows[0]["seed"] == 188
    assert {r["guidance"] for r in rows} == {9.0} and u.settings["steps"] == 100
    with pytest.raises(UserError, match="did you mean 'Van_Gogh'"):
        get_task("unlearncanvas/style/Van_Gogg")


def test_unlearncanvas_judge_needs_its_checkpoints(monkeypatch):
    from unlearnbench.tasks.unlearncanvas import UnlearnCanvasJudge

    monkeypatch.delenv("UNLEARNBENCH_UNLEARNCANVAS_STYLE_CKPT", raising=False)
    with pytest.raises(UserError, match="STYLE_CKPT"):
        UnlearnCanvasJudge()


def test_concept_aggregation_is_pure_and_correct():
    from unlearnbench.metrics.diffusion import fid, gaussian_stats
    from unlearnbench.runner import get_protocol, get_task

    task = get_task("mini-canvas/style/sunset")
    rng = np.random.default_rng(0)

    def row(split, style, obj, ps, po):
        return {"split": split, "label_style": style, "label_object": obj, "pred_style": ps, "pred_object": po,
                "clip_cosine": 0.2, "features": rng.normal(size=4).tolist()}

    rows = [row("forget", "sunset", "circle", "sunset", "circle"), row("forget", "sunset", "ring", "ink", "ring"),
            row("forget", "sunset", "cross", "ocean", "ring"), row("forget", "sunset", "square", "ink", "square"),
            row("retain", "ocean", "circle", "ocean", "circle"), row("retain", "ink", "ring", "ocean", "ring"),
            row("retain", "ink", "cross", "ink", "ring")] + [row("retain", "ocean", "ring", "ocean", "ring")] * 5
    proto = get_protocol(task)
    m = proto.aggregate(task, rows, None)
    assert m["ua"]["value"] == 75.0 and m["ua"]["n"] == 4
    assert m["ira"]["value"] == pytest.approx(100 * 7 / 8) and m["cra"]["value"] == pytest.approx(100 * 7 / 8)
    assert m["clip_score"]["value"] == pytest.approx(20.0) and "fid" not in m  # no reference, no FID
    ref_feats = rng.normal(size=(50, 4))
    mu, sigma = gaussian_stats(ref_feats)
    ref = {"fid_reference": {"mu": mu.tolist(), "sigma": sigma.tolist(), "sha256": "x"}}
    m2 = proto.aggregate(task, rows, ref)
    retain_feats = [r["features"] for r in rows if r["split"] == "retain"]
    assert m2["fid"]["value"] == pytest.approx(fid(retain_feats, ref_feats)) and m2["fid"]["reference_sha256"] == "x"
    assert proto.aggregate(task, rows, ref) == m2


def _target_samples():
    """The built world's target images for every (style, object) prompt, with the world's judge verdicts."""
    from unlearnbench.runner import get_task, load_model
    from unlearnbench.tasks import mini_canvas as mc

    task = get_task("mini-canvas/object/circle")
    r = mc.recipe()
    rows = mc.prompts(task)
    model = load_model(task, "world:target", device="cpu")
    imgs = model.sample([q["prompt"] for q in rows], [q["seed"] for q in rows], r["guidance"], r["steps"])
    return rows, imgs, mc.judge(task).classify(imgs)


def test_test_scale_target_draws_different_images_for_different_prompts():
    """The test-scale world is not a constant image: each style's samples have their own colours
    (judged on pixels, no classifier involved) and the world's style judge names most of them.
    The test-scale world is sized for speed (~30 CPU-s to build): its objects are not drawn."""
    import torch

    torch.set_num_threads(1)
    rows, imgs, pred = _target_samples()
    x = imgs.astype(np.float64) / 255
    styles = sorted({q["labels"]["style"] for q in rows})
    means = [x[[q["labels"]["style"] == s for q in rows]].mean((0, 1, 2)) for s in styles]
    gaps = [np.abs(means[i] - means[j]).sum() for i in range(len(means)) for j in range(i)]
    assert min(gaps) > 0.05, gaps  # a constant image has gap 0 between every pair of styles (v1: 0.002)
    assert x.std(0).mean() > 0.05  # per-pixel spread across prompts (v1: 0.002)
    style_ok = np.mean([p == q["labels"]["style"] for p, q in zip(pred["style"], rows)])
    assert style_ok >= 0.5, style_ok


@pytest.mark.slow
def test_default_world_draws_recognisable_objects_and_styles(monkeypatch):
    """Issue #13/#16 claims at default scale (a cold default world build: 360 CPU-s, 22 min wall on
    2 cores at load ~11): the target's samples are judged correct (style and object) on >= 90 % of the
    (style, object) prompts, and the untouched target has object UA <= 10 %, IRA >= 80 %."""
    import torch

    from unlearnbench.runner import score

    torch.set_num_threads(1)
    monkeypatch.setenv("UNLEARNBENCH_SCALE", "default")
    rows, imgs, pred = _target_samples()
    both = np.mean([ps == q["labels"]["style"] and po == q["labels"]["object"]
                    for ps, po, q in zip(pred["style"], pred["object"], rows)])
    assert both >= 0.9, both
    m = score("mini-canvas/object/circle", "world:target", progress=False, device="cpu").result["metrics"]
    assert m["ua"]["value"] <= 10 and m["ira"]["value"] >= 80, (m["ua"], m["ira"])


@pytest.mark.slow
def test_world_end_to_end_esd_reference_and_attack(tmp_path):
    import torch

    from unlearnbench.baselines.unlearndiffatk import Config, unlearndiffatk_attack
    from unlearnbench.registry import WORLDS
    from unlearnbench.runner import get_task, load_model, score
    from unlearnbench.unlearning import save_unlearned, unlearn

    torch.set_num_threads(1)
    name = "mini-canvas/object/circle"
    task = get_task(name)
    target = score(name, "world:target", progress=False, device="cpu")
    again = score(name, "world:target", progress=False, device="cpu")
    assert target.rows == again.rows  # same seeds -> same images -> same judgements
    model, record = unlearn(name, "esd", progress=False, device="cpu")
    assert record["config"]["variant"] == "u" and record["config"]["iterations"] == 3
    ckpt = save_unlearned(model, record, tmp_path / "esd")
    ref = WORLDS.get("mini-canvas").reference(task)
    s = score(name, str(ckpt), reference=ref, progress=False, device="cpu")
    assert {"ua", "ira", "cra", "clip_score", "fid"} <= set(s.result["metrics"])
    assert s.result["model"]["weights_sha256"] == model.describe()["weights_sha256"]
    out = unlearndiffatk_attack(task, load_model(task, str(ckpt), device="cpu"),
                                config=Config(n_timesteps=2, iterations=2, max_prompts=2))
    assert set(out["metrics"]) == {"attack_asr/pre", "attack_asr/unlearndiffatk"}
    assert out["metrics"]["attack_asr/unlearndiffatk"]["value"] >= out["metrics"]["attack_asr/pre"]["value"]
