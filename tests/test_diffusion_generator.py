"""ImageGenerator: loading, component swaps, determinism, save/reload, one-line user errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.errors import UserError
from unlearnbench.image_generator import load_image_generator, parse_checkpoint




@pytest.fixture(scope="module")
def pipe_dir(tiny_sd_dir):
    return tiny_sd_dir


def _gen(spec):
    return load_image_generator(str(spec), device="cpu", dtype="float32")


def test_parse_checkpoint():
    assert parse_checkpoint("base+unet=/x/u.safetensors") == ("base", {"unet": "/x/u.safetensors"})
    assert parse_checkpoint("b+unet=u+text_encoder=t")[1] == {"unet": "u", "text_encoder": "t"}
    for bad in ("b+vae=x", "b+unet", "b+unet=a+unet=b", ""):
        with pytest.raises(UserError):
            parse_checkpoint(bad)


def test_bad_inputs_are_one_line_user_errors(tmp_path, pipe_dir):
    for spec in (tmp_path / "nope", "not/a/folder/at/all", f"{pipe_dir}+unet={tmp_path / 'missing.safetensors'}"):
        with pytest.raises(UserError) as e:
            _gen(spec)
        assert "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="model_index.json"):
        _gen(tmp_path / "empty")


def test_same_seed_same_image_and_batch_independence(pipe_dir):
    g = _gen(pipe_dir)
    a = g.sample(["a cat", "a dog", "a cat"], [1, 2, 3], guidance=3.0, steps=4)
    b = g.sample(["a cat", "a dog", "a cat"], [1, 2, 3], guidance=3.0, steps=4)
    assert a.dtype == np.uint8 and a.shape == (3, 16, 16, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[2])  # different seed, different image
    alone = g.sample(["a dog"], [2], guidance=3.0, steps=4)  # same image without batch peers
    assert np.abs(alone[0].astype(int) - a[1].astype(int)).max() <= 1
    # per-row guidance: rows with another guidance still match their single-guidance images
    mixed = g.sample(["a cat", "a dog"], [1, 2], guidance=[3.0, 5.0], steps=4)
    assert np.abs(mixed[0].astype(int) - a[0].astype(int)).max() <= 1
    assert not np.array_equal(mixed[1], a[1])


def test_unet_and_text_encoder_swaps(tmp_path, pipe_dir):
    from safetensors.torch import save_file

    base = _gen(pipe_dir)
    ref = base.sample(["a cat"], [0], guidance=3.0, steps=4)
    sd = {k: v.clone() + (0.5 if k == "conv_out.bias" else 0.0) for k, v in base.unet.state_dict().items()}
    save_file(sd, str(tmp_path / "unet.safetensors"))
    swapped = _gen(f"{pipe_dir}+unet={tmp_path / 'unet.safetensors'}")
    assert swapped.describe()["swaps"] == {"unet": str(tmp_path / "unet.safetensors")}
    assert swapped.describe()["weights_sha256"] != base.describe()["weights_sha256"]
    assert not np.array_equal(swapped.sample(["a cat"], [0], guidance=3.0, steps=4), ref)
    # a component folder and a torch .pt (weights_only) work too
    swapped.unet.save_pretrained(str(tmp_path / "unet_dir"))
    te = {k: v.clone() * 1.01 for k, v in base.text_encoder.state_dict().items()}
    torch.save(te, str(tmp_path / "te.pt"))
    both = _gen(f"{pipe_dir}+unet={tmp_path / 'unet_dir'}+text_encoder={tmp_path / 'te.pt'}")
    assert torch.equal(both.unet.state_dict()["conv_in.weight"], swapped.unet.state_dict()["conv_in.weight"])
    key = next(k for k in te if k.endswith("final_layer_norm.weight"))
    assert torch.allclose(both.text_encoder.state_dict()[key], te[key])


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_refuses_code_and_foreign_layouts(tmp_path, pipe_dir):
    from safetensors.torch import save_file

    torch.save({"x": _Evil()}, str(tmp_path / "evil.pt"))
    with pytest.raises(UserError, match="weights_only"):
        _gen(f"{pipe_dir}+unet={tmp_path / 'evil.pt'}")
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(tmp_path / "compvis.safetensors"))
    with pytest.raises(UserError, match="CompVis"):
        _gen(f"{pipe_dir}+unet={tmp_path / 'compvis.safetensors'}")
    save_file({"conv_in.weight": torch.zeros(1)}, str(tmp_path / "partial.safetensors"))
    with pytest.raises(UserError, match="missing keys"):
        _gen(f"{pipe_dir}+unet={tmp_path / 'partial.safetensors'}")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(UserError, match="unsupported"):
        _gen(f"{pipe_dir}+unet={tmp_path / 'w.txt'}")


def test_save_reload_roundtrip(tmp_path, pipe_dir):
    g = _gen(pipe_dir)
    g.save(tmp_path / "saved")
    again = _gen(tmp_path / "saved")
    assert again.describe()["weights_sha256"] == g.describe()["weights_sha256"]
    assert np.array_equal(g.sample(["a dog"], [5], 2.0, 3), again.sample(["a dog"], [5], 2.0, 3))


def test_registered_as_diffusion_loader(pipe_dir):
    from unlearnbench.catalog import load_all
    from unlearnbench.registry import MODEL_LOADERS

    load_all()
    g = MODEL_LOADERS.get("diffusion")(str(pipe_dir), device="cpu")
    assert g.describe()["kind"] == "diffusion" and g.device_name == "cpu" and g.dtype_name == "float32"
