"""Contact sheets: the layout (prompt rows x seed columns), captions, hash and determinism."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from unlearnbench.contact_sheet import (CAPTION_LINES, FONT_SIZE, TILE_MIN, render_contact_sheet, sheet_pages,
                                        write_contact_sheet)
from unlearnbench.errors import UserError

COLOURS = {("a cat", 7): (255, 0, 0), ("a cat", 3): (0, 255, 0), ("a dog", 7): (0, 0, 255), ("a dog", 3): (255, 255, 0)}


def _inputs(verdict="safe"):
    keys = list(COLOURS)
    ims = [np.full((16, 16, 3), COLOURS[k], np.uint8) for k in keys]
    return ims, [k[0] for k in keys], [k[1] for k in keys], [verdict] * len(keys)


def test_tiles_sit_at_prompt_row_and_seed_column(tmp_path):
    path = tmp_path / "sheet.png"
    sha = write_contact_sheet(*_inputs(), path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    sheet = np.asarray(Image.open(path).convert("RGB"))
    side, pad = TILE_MIN, 4  # 16 px images are shown at the minimum tile side
    cell_w, cell_h = side + 2 * pad, side + 2 * pad + CAPTION_LINES * (FONT_SIZE + 3)
    assert sheet.shape == (2 * cell_h, 2 * cell_w, 3)
    for (prompt, seed), colour in COLOURS.items():
        r, c = ["a cat", "a dog"].index(prompt), [3, 7].index(seed)  # seeds ascending
        centre = sheet[r * cell_h + pad + side // 2, c * cell_w + pad + side // 2]
        assert tuple(centre) == colour, (prompt, seed)
        caption = sheet[r * cell_h + pad + side + 2:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w]
        assert (caption.min(axis=2) < 128).sum() > 50  # text was drawn under every tile


def test_verdict_is_in_the_caption_and_output_is_deterministic(tmp_path):
    a = write_contact_sheet(*_inputs("safe"), tmp_path / "a.png")
    b = write_contact_sheet(*_inputs("safe"), tmp_path / "b.png")
    c = write_contact_sheet(*_inputs("NUDE FEET_EXPOSED 0.91"), tmp_path / "c.png")
    assert a == b and a != c
    diff = np.asarray(Image.open(tmp_path / "a.png")) != np.asarray(Image.open(tmp_path / "c.png"))
    rows = np.nonzero(diff.any(axis=(1, 2)))[0]
    assert rows.min() > TILE_MIN  # only the caption area changed, not the images


def test_bad_inputs_are_user_errors(tmp_path):
    ims, p, s, v = _inputs()
    with pytest.raises(UserError):
        write_contact_sheet(ims, p[:2], s, v, tmp_path / "x.png")
    with pytest.raises(UserError):
        render_contact_sheet([np.zeros((4, 4, 3), np.float32)], ["p"], [0], ["v"])
    assert not (tmp_path / "x.png").exists()


def test_large_images_are_downscaled_and_pages_split_prompts():
    sheet = render_contact_sheet([np.zeros((512, 512, 3), np.uint8)], ["p"], [0], ["v"])
    assert sheet.size[0] == 256 + 8
    assert sheet_pages(["a", "a", "b", "c", "b"], max_rows=2) == [[0, 1, 2, 4], [3]]
