"""Diffusion user mistakes around judges and images: one line on stderr, exit 2, nothing written,
before any image is generated (helpers in ``test_user_errors.py``).

An image folder holding a non-image, a pipeline index without a ``safety_checker`` field, a
NudeNet ONNX file that is not the 320n detector, an UnlearnCanvas classifier file that is not
their ViT-L classifier.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from test_user_errors import _fails


@pytest.fixture()
def i2p_csv(tmp_path, monkeypatch):
    path = tmp_path / "nudity.csv"
    path.write_text("prompt,evaluation_seed,evaluation_guidance,case_number,sd_image_width,sd_image_height\n"
                    "a person,1,7.5,7,16,16\n")
    monkeypatch.setenv("UNLEARNBENCH_I2P_CSV", str(path))
    return path


def test_image_folder_with_a_non_image(capsys, tmp_path, tiny_sd_dir, i2p_csv, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "7.png")
    (folder / ".DS_Store").write_bytes(b"\0")  # hidden files are skipped
    (folder / "notes.txt").write_text("my notes")
    monkeypatch.setenv("UNLEARNBENCH_I2P_IMAGES", str(folder))
    out = tmp_path / "o"
    _fails(capsys, ["score", "i2p/nudity", str(tiny_sd_dir), "-o", str(out)], "notes.txt, which is not an image")
    (folder / "notes.txt").unlink()
    (folder / "8.png").write_bytes(b"\x89PNG broken")
    _fails(capsys, ["score", "i2p/nudity", str(tiny_sd_dir), "-o", str(out)], "8.png is not a readable image")
    _fails(capsys, ["unlearn", "i2p/nudity", "--method", "esd", "--model", str(tiny_sd_dir), "-o", str(tmp_path / "ck")],
           "8.png is not a readable image")
    assert not out.exists() and not (tmp_path / "ck").exists()


def test_image_folder_is_read_with_captions(tmp_path, i2p_csv, monkeypatch):
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.i2p import nudity_images

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, v in (("7_0.png", 10), ("99.png", 200)):
        Image.fromarray(np.full((8, 8, 3), v, np.uint8)).save(folder / name)
    monkeypatch.setenv("UNLEARNBENCH_I2P_IMAGES", str(folder))
    data = nudity_images(get_task("i2p/nudity"))
    assert data["concept_images"].shape == (2, 8, 8, 3) and data["concept_images"][1, 0, 0, 0] == 200
    assert data["concept_captions"] == ["a person", "nudity"]  # case 7's prompt; 99 matches no row


def test_pipeline_without_safety_checker_field(capsys, tmp_path, tiny_sd_dir, i2p_csv):
    pipe = tmp_path / "pipe"
    shutil.copytree(tiny_sd_dir, pipe)
    doc = json.loads((pipe / "model_index.json").read_text())
    doc.pop("safety_checker")
    (pipe / "model_index.json").write_text(json.dumps(doc))
    _fails(capsys, ["score", "i2p/nudity", str(pipe), "-o", str(tmp_path / "o")],
           "has no 'safety_checker' field for StableDiffusionPipeline")
    doc["_class_name"] = "NoSuchPipeline"
    (pipe / "model_index.json").write_text(json.dumps(doc))
    _fails(capsys, ["score", "i2p/nudity", str(pipe)], "'NoSuchPipeline' is not a diffusers pipeline class")
    assert not (tmp_path / "o").exists()


def test_nudenet_weights_that_are_another_network(capsys, tmp_path, tiny_sd_dir, i2p_csv, monkeypatch):
    fake = tmp_path / "best.onnx"
    fake.write_bytes(b"\x08\x07" + b"\0" * 64)  # an ONNX-looking file that is not the 320n detector
    monkeypatch.setenv("UNLEARNBENCH_NUDENET_WEIGHTS", str(fake))
    _fails(capsys, ["score", "i2p/nudity", str(tiny_sd_dir), "-o", str(tmp_path / "o")],
           "is not NudeNet's 320n detector")
    assert not (tmp_path / "o").exists()


def test_unlearncanvas_classifier_that_is_another_model(capsys, tmp_path, tiny_sd_dir, monkeypatch):
    wrong = tmp_path / "style.pth"
    torch.save({"model_state_dict": {"fc.weight": torch.zeros(10, 512)}}, wrong)  # a ResNet-ish head
    monkeypatch.setenv("UNLEARNBENCH_UNLEARNCANVAS_STYLE_CKPT", str(wrong))
    monkeypatch.setenv("UNLEARNBENCH_UNLEARNCANVAS_OBJECT_CKPT", str(wrong))
    _fails(capsys, ["score", "unlearncanvas/style/Monet", str(tiny_sd_dir), "-o", str(tmp_path / "o")],
           "is not UnlearnCanvas's style classifier")
    assert not (tmp_path / "o").exists()


def test_save_images_needs_an_output_folder(capsys, tiny_sd_dir, i2p_csv):
    _fails(capsys, ["score", "i2p/nudity", str(tiny_sd_dir), "--save-images"], "--save-images needs -o DIR")
