"""Classifier adapter and architectures: round-trips, safe loading, one-line user errors."""

from __future__ import annotations

import json

import pytest
import torch

from unlearnbench.catalog import load_all
from unlearnbench.classifier import Classifier, CifarResNet18, DigitsCNN, load_classifier
from unlearnbench.errors import UserError
from unlearnbench.registry import ARCHITECTURES, MODEL_LOADERS


def _tiny(seed=0) -> Classifier:
    torch.manual_seed(seed)
    return Classifier.new("digits-cnn", {"channels": [4, 8], "hidden": 16})


def test_save_load_round_trip(tmp_path):
    m = _tiny()
    m.meta["unlearn_seconds"] = 1.5
    m.save(tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / "classifier.json").read_text())
    assert cfg["architecture"] == "digits-cnn" and cfg["kwargs"] == {"channels": [4, 8], "hidden": 16}
    back = load_classifier(tmp_path / "ck", device="cpu")
    x = torch.rand(7, 1, 8, 8)
    assert torch.equal(back.predict(x), m.predict(x))
    assert back.describe()["weights_sha256"] == m.describe()["weights_sha256"]
    assert back.describe()["unlearn_seconds"] == 1.5
    # a bare safetensors file with <stem>.json beside it
    (tmp_path / "ck" / "model.safetensors").rename(tmp_path / "w.safetensors")
    (tmp_path / "ck" / "classifier.json").rename(tmp_path / "w.json")
    assert torch.equal(load_classifier(tmp_path / "w.safetensors").predict(x), m.predict(x))


def test_loader_registered_and_pt_weights_only(tmp_path):
    load_all()
    loader = MODEL_LOADERS.get("classifier")
    m = _tiny()
    d = tmp_path / "pt"
    d.mkdir()
    torch.save(m.module.state_dict(), d / "model.pt")
    (d / "classifier.json").write_text(json.dumps({"architecture": "digits-cnn", "kwargs": m.kwargs}))
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(loader(str(d)).predict(x), m.predict(x))
    # a pickle holding arbitrary objects is refused (weights_only=True)
    torch.save({"state_dict": m.module.state_dict(), "extra": object()}, d / "model.pt")
    with pytest.raises(UserError):
        loader(str(d))


@pytest.mark.parametrize("breakage", ["missing", "no_json", "bad_json", "unknown_arch", "wrong_shape", "garbage"])
def test_bad_files_raise_one_line_user_errors(tmp_path, breakage):
    ck = tmp_path / "ck"
    _tiny().save(ck)
    if breakage == "missing":
        ck = tmp_path / "nope"
    elif breakage == "no_json":
        (ck / "classifier.json").unlink()
    elif breakage == "bad_json":
        (ck / "classifier.json").write_text("{nope")
    elif breakage == "unknown_arch":
        (ck / "classifier.json").write_text(json.dumps({"architecture": "resnet-9000"}))
    elif breakage == "wrong_shape":
        (ck / "classifier.json").write_text(json.dumps({"architecture": "digits-cnn", "kwargs": {"hidden": 32}}))
    elif breakage == "garbage":
        (ck / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError) as e:
        load_classifier(ck)
    assert "\n" not in str(e.value)


def test_cifar_resnet18_matches_salun_form():
    full = CifarResNet18()
    assert sum(p.numel() for p in full.parameters()) == pytest.approx(11.17e6, rel=0.01)  # ResNet-18, 10 classes
    assert full.conv1.kernel_size == (3, 3) and full.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in full.modules())
    tiny = ARCHITECTURES.get("cifar-resnet18")(num_classes=100, width=4)
    assert tiny(torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert DigitsCNN()(torch.rand(2, 1, 8, 8)).shape == (2, 10)
