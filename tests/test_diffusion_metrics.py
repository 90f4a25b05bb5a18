"""Diffusion metrics against independent references (scipy sqrtm FID, torchmetrics, manual cosine, NudeNet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.errors import UserError
from unlearnbench.metrics.diffusion import (
    NUDE_KEYS, attack_asr, clip_score, clip_cosines, cra, fid, gaussian_stats, ira, nude_flags, nudity_asr,
    torchmetrics_fid,
)


def test_ira_cra():
    assert ira([0, 1, 2, 2], [0, 1, 2, 3]) == 75.0
    assert cra(["a", "b"], ["a", "a"]) == 50.0
    with pytest.raises(UserError):
        ira([1, 2], [1])
    with pytest.raises(UserError):
        cra([], [])


def _scipy_fid(f1, f2):
    from scipy import linalg

    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


class _FlatFeatures(torch.nn.Module):
    """A fixed random projection of uint8 images (stands in for Inception offline)."""

    def __init__(self, dim=8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3 * 8 * 8, dim, generator=g, dtype=torch.float64)

    def forward(self, x):
        return (x.reshape(x.shape[0], -1).double() / 255.0) @ self.proj


def test_fid_matches_scipy_and_torchmetrics():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(300, 8, 8, 3), dtype=np.uint8)
    gen = np.clip(real.astype(int) + rng.integers(-60, 60, size=real.shape) + 20, 0, 255).astype(np.uint8)
    net = _FlatFeatures()
    feat = lambda im: net(torch.as_tensor(im).permute(0, 3, 1, 2)).numpy()  # noqa: E731
    ours = fid(feat(gen), feat(real))
    assert ours == pytest.approx(_scipy_fid(feat(gen), feat(real)), rel=1e-6)
    assert ours == pytest.approx(torchmetrics_fid(gen, real, net), rel=1e-4)
    mu, sigma = gaussian_stats(feat(real))
    assert fid(feat(gen), {"mu": mu, "sigma": sigma}) == pytest.approx(ours, rel=1e-9)
    assert fid(feat(real), feat(real)) == pytest.approx(0.0, abs=1e-6)
    assert ours > 0.01
    with pytest.raises(UserError):
        fid(feat(gen)[:, :4], feat(real))


def test_clip_score_matches_manual_cosine_and_clips_the_mean_at_zero():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
    manual = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]
    assert np.allclose(clip_cosines(a, b), manual)
    assert clip_score(a, b) == pytest.approx(max(100 * np.mean(manual), 0.0))
    assert clip_score(a, -a) == 0.0 and clip_score(a, 3 * a) == pytest.approx(100.0)
    mixed = np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [-0.8, 0.6]])  # cosines 1 and -0.8
    assert clip_score(*mixed) == pytest.approx(10.0)  # mean first (torchmetrics), not mean of clipped (50)


def test_nudity_aggregation_with_mocked_detections():
    dets = [
        [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.46}],
        [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.45}],  # not strictly above 0.45
        [{"class": "FACE_FEMALE", "score": 0.99}, {"class": "FEMALE_BREAST_COVERED", "score": 0.9}],
        [],
        [{"class": "BELLY_EXPOSED", "score": 0.7}],
    ]
    assert nude_flags(dets).tolist() == [1, 0, 0, 0, 1]
    assert nudity_asr(dets) == 40.0
    assert nudity_asr(dets, threshold=0.6) == 20.0  # a stricter threshold
    assert nudity_asr(dets, classes=("FEMALE_BREAST_EXPOSED",)) == 20.0
    assert "FACE_FEMALE" not in NUDE_KEYS and len(NUDE_KEYS) == 9


def test_nudenet_detector_on_real_photos_finds_no_nudity():
    skimage_data = pytest.importorskip("skimage.data")
    from unlearnbench.tasks.i2p import NudeNetJudge

    photos = [skimage_data.astronaut(), skimage_data.coffee(), skimage_data.chelsea()]
    judge = NudeNetJudge()
    dets = [judge.detect_nudity(p[None])[0] for p in photos]
    assert nudity_asr(dets) == 0.0
    # the detector does run: it finds the astronaut's face
    assert any(d["class"].startswith("FACE") for d in dets[0])


def test_attack_asr():
    assert attack_asr([True, False, False, True]) == 50.0
    with pytest.raises(UserError):
        attack_asr([])


def test_metrics_registered_without_reregistering_ua():
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import METRICS

    load_all()
    for name in ("ira", "cra", "fid", "clip_score", "nudity_asr", "attack_asr"):
        assert "diffusion" in METRICS.meta(name)["modality"]
    assert METRICS.meta("fid")["higher_is_better"] is False
