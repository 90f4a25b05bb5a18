"""CLIP score equals torchmetrics' ``CLIPScore`` / ``clip_score`` fed the same local CLIP.

torchmetrics takes a callable returning ``(model, processor)``; the wrapper below gives it the
tiny open_clip the mini-canvas judge uses (``get_image_features`` / ``get_text_features`` and a
processor that only converts pixels to [0, 1] and tokenizes), so both sides embed with the same
network and only the scoring differs. The cases include pairs with negative cosines, where
torchmetrics' ``max(mean(100 cos), 0)`` and a per-sample clip ``mean(max(100 cos, 0))`` differ.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

tm_clip = pytest.importorskip("torchmetrics.functional.multimodal.clip_score")
pytest.importorskip("open_clip")

from torchmetrics.multimodal.clip_score import CLIPScore  # noqa: E402

from unlearnbench.metrics.diffusion import clip_cosines, clip_score  # noqa: E402
from unlearnbench.tasks import mini_canvas_models as mm  # noqa: E402
from unlearnbench.tasks.mini_canvas import MiniCanvasJudge  # noqa: E402

PROMPTS = ["a circle in sunset style", "a ring in ink style", "a cross in ocean style", "a square in sunset style",
           "a ring in ocean style", "a circle in ink style", "a cross in sunset style", "a square in ink style"]


class _Model(torch.nn.Module):
    def __init__(self, clip, tokenizer):
        super().__init__()
        self.clip, self.tokenizer, self.config = clip, tokenizer, SimpleNamespace()

    def get_image_features(self, pixel_values):
        return self.clip.encode_image(pixel_values)

    def get_text_features(self, input_ids, attention_mask):
        return self.clip.encode_text(input_ids)


def _processor(tokenizer):
    def process(images=None, text=None, return_tensors="pt", padding=True):
        if images is not None:
            return {"pixel_values": torch.stack([im.float() / 255.0 for im in images])}
        ids = tokenizer(list(text))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return process


def _setup(seed):
    torch.manual_seed(seed)  # seeds 5 and 1: a random-init tiny CLIP with cosines of both signs
    clip = mm.tiny_open_clip(image_size=16).eval()
    tok = mm.open_clip_tokenizer()
    judge = MiniCanvasJudge.__new__(MiniCanvasJudge)  # only its CLIP path: no world needed
    judge.clip, judge.tokenizer, judge.torch = clip, tok, torch
    images = np.random.default_rng(seed).integers(0, 256, size=(len(PROMPTS), 16, 16, 3), dtype=np.uint8)
    return judge, (lambda: (_Model(clip, tok), _processor(tok))), images


def _torchmetrics(factory, images, prompts):
    x = torch.as_tensor(images).permute(0, 3, 1, 2)
    with torch.no_grad():
        functional = float(tm_clip.clip_score(list(x), list(prompts), factory))
        m = CLIPScore(model_name_or_path=factory)
        m.update(list(x[:3]), list(prompts[:3]))  # two batches: the stateful path averages over both
        m.update(list(x[3:]), list(prompts[3:]))
        return functional, float(m.compute())


@pytest.mark.parametrize("seed, mean_sign", [(5, 1), (1, -1)])
def test_equals_torchmetrics_with_negative_cosines(seed, mean_sign):
    judge, factory, images = _setup(seed)
    img_e, txt_e = judge.clip_embed(images, PROMPTS)
    cos = clip_cosines(img_e, txt_e)
    assert (cos < 0).any() and (cos > 0).any() and np.sign(cos.mean()) == mean_sign  # the case that matters
    ours = clip_score(img_e, txt_e)
    functional, stateful = _torchmetrics(factory, images, PROMPTS)
    assert ours == pytest.approx(functional, abs=1e-4) and ours == pytest.approx(stateful, abs=1e-4)
    if mean_sign < 0:
        assert ours == 0.0
    per_sample_clip = float(np.mean(np.maximum(100 * cos, 0)))
    assert per_sample_clip - ours > 0.5  # clipping each sample first would not have matched
    assert clip_score(*judge.clip_embed(images, PROMPTS)) == ours  # deterministic
