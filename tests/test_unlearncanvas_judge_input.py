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
from unlearnbench.tasks.unlearncanvas import classifier_input, load_classifier, read_classifier_state  # noqa: E402

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
    good, head, junk = tmp_path / "good.pth", tmp_path / "head.pth", tmp_path / "junk.pth"
    vit = {"patch_embed.proj.weight": torch.zeros(1024, 3, 16, 16), "head.weight": torch.zeros(20, 1024)}
    torch.save({"model_state_dict": vit}, good)
    torch.save({"model_state_dict": {**vit, "head.weight": torch.zeros(51, 1024)}}, head)
    junk.write_bytes(b"not a checkpoint")
    assert set(read_classifier_state(str(good), "object")) == set(vit)
    with pytest.raises(UserError, match=r"style classifier .*head.weight has shape \(20, 1024\), expected \(51, 1024\)"):
        read_classifier_state(str(good), "style")
    with pytest.raises(UserError, match="object classifier"):
        read_classifier_state(str(head), "object")
    with pytest.raises(UserError, match="not a readable"):
        read_classifier_state(str(junk), "object")
    # the full key/shape check once the network exists
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    sd = torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict()
    assert torch.equal(load_classifier(net, sd, "x", "style")[0].weight, sd["0.weight"])
    with pytest.raises(UserError, match="shape"):
        load_classifier(net, torch.nn.Sequential(torch.nn.Linear(4, 5)).state_dict(), "x", "style")
    with pytest.raises(UserError, match="missing"):
        load_classifier(net, {"0.weight": sd["0.weight"]}, "x", "style")
