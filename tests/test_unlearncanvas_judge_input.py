"""UnlearnCanvas judges see the tensor their ``quantitative/accuracy.py`` builds.

Reference side, written from their scripts: the sample saved as ``.jpg`` by PIL with defaults
(``sampling_unlearned_models/esd.py``), opened with ``Image.open`` and passed through
``torchvision.transforms.Compose([Resize((224, 224)), ToTensor(), Normalize([0.5], [0.5])])``.
"""

import numpy as np
import pytest
import torch

transforms = pytest.importorskip("torchvision.transforms")
skimage_data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from unlearnbench.errors import UserError  # noqa: E402
from unlearnbench.tasks.unlearncanvas import classifier_input, load_classifier  # noqa: E402

REFERENCE = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])


def _reference(images, tmp_path):
    out = []
    for k, a in enumerate(images):
        path = tmp_path / f"Monet_Cats_seed{k}.jpg"
        Image.fromarray(a).save(path)
        out.append(REFERENCE(Image.open(path)))
    return torch.stack(out)


def test_classifier_input_equals_torchvision_pipeline(tmp_path):
    astro = skimage_data.astronaut()  # 512 x 512 like SD samples
    images = np.stack([astro, astro[::-1, ::-1], np.ascontiguousarray(astro[:, :, ::-1])])
    ours = classifier_input(images)
    ref = _reference(images, tmp_path)
    assert ours.shape == ref.shape == (3, 3, 224, 224) and ours.dtype == torch.float32
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    assert ours.min() < -0.9 and ours.max() > 0.9  # [-1, 1], not [0, 1]
    assert torch.equal(classifier_input(images), ours)  # deterministic


def test_jpeg_round_trip_matters_and_can_be_skipped(tmp_path):
    astro = skimage_data.astronaut()[None]
    raw = classifier_input(astro, jpeg_quality=None)
    ref_png = REFERENCE(Image.fromarray(astro[0]))[None]
    assert torch.allclose(raw, ref_png, atol=1e-6, rtol=0)
    assert (raw - classifier_input(astro)).abs().max() > 0.01


def test_bad_pixels_are_user_errors():
    with pytest.raises(UserError):
        classifier_input(np.zeros((1, 8, 8, 3), np.float32))


def test_wrong_classifier_file_is_refused(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    good, wrong_shape, other = tmp_path / "good.pth", tmp_path / "shape.pth", tmp_path / "other.pth"
    torch.save({"model_state_dict": net.state_dict()}, good)
    torch.save({"model_state_dict": torch.nn.Sequential(torch.nn.Linear(4, 5)).state_dict()}, wrong_shape)
    torch.save({"model_state_dict": {"head.weight": torch.zeros(3, 4)}}, other)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert torch.equal(load_classifier(fresh, str(good), "style")[0].weight, net[0].weight)
    with pytest.raises(UserError, match="shape"):
        load_classifier(torch.nn.Sequential(torch.nn.Linear(4, 3)), str(wrong_shape), "style")
    with pytest.raises(UserError, match="not UnlearnCanvas's object classifier"):
        load_classifier(torch.nn.Sequential(torch.nn.Linear(4, 3)), str(other), "object")
    with pytest.raises(UserError, match="not a readable"):
        load_classifier(torch.nn.Sequential(torch.nn.Linear(4, 3)), str(tmp_path / "junk.pth"), "object")
