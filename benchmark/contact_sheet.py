"""Contact sheets: every generated image of a diffusion run on one PNG a person can open.

Layout: one row per prompt (in first-seen order), one column per seed (ascending); each tile
is the image (upscaled with nearest neighbour when small, downscaled when large) with a
caption under it: the prompt, the seed and the judge's verdict for that image. A missing
(prompt, seed) pair is left blank. The PNG is written atomically and its sha256 returned, so
the caller can list it in ``result['attachments']`` (role ``contact_sheet``).

>>> import numpy as np, tempfile, os
>>> ims = np.zeros((2, 8, 8, 3), np.uint8)
>>> d = tempfile.mkdtemp()
>>> len(write_contact_sheet(ims, ["a cat", "a cat"], [1, 2], ["ok", "ok"], os.path.join(d, "s.png")))
64
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from unlearnbench.errors import UserError

TILE_MAX = 256  # largest tile side in pixels (a 512 px SD image is shown at half size)
TILE_MIN = 128  # smallest tile side (a 32 px mini-canvas image is shown 4x, pixels kept sharp)
CAPTION_LINES = 4  # caption height in text lines: up to 2 for the prompt, 1 seed, 1+ verdict
FONT_SIZE = 11
MAX_ROWS_PER_SHEET = 60  # ``sheet_pages`` splits longer prompt lists over several sheets


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def _tile_side(h: int, w: int) -> int:
    return int(min(TILE_MAX, max(TILE_MIN, max(h, w))))


def _fit(img: np.ndarray, side: int):
    from PIL import Image

    im = Image.fromarray(img)
    scale = side / max(im.size)
    size = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
    return im.resize(size, Image.NEAREST if scale >= 1 else Image.LANCZOS)


def _caption(prompt: str, seed: int, verdict: str, width_chars: int) -> list[str]:
    lines = textwrap.wrap(prompt, width_chars) or [""]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: max(1, width_chars - 1)] + "…"]
    verdict_lines = textwrap.wrap(str(verdict), width_chars) or [""]
    return lines + [f"seed {seed}"] + verdict_lines[: max(1, CAPTION_LINES - len(lines) - 1)]


def _as_uint8_rgb(images) -> list[np.ndarray]:
    out = []
    for i, im in enumerate(images):
        a = np.asarray(im)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise UserError(f"contact sheet: image {i} has shape {a.shape}, expected [H, W, 3]")
        if a.dtype != np.uint8:
            raise UserError(f"contact sheet: image {i} is {a.dtype}, expected uint8")
        out.append(np.ascontiguousarray(a[:, :, :3]))
    return out


def render_contact_sheet(images, prompts: Sequence[str], seeds: Sequence[int], verdicts: Sequence[str]):
    """The sheet as a PIL image (see the module docstring for the layout)."""
    from PIL import Image, ImageDraw

    ims = _as_uint8_rgb(images)
    n = len(ims)
    if not (n == len(prompts) == len(seeds) == len(verdicts)) or n == 0:
        raise UserError(f"contact sheet: need equal, non-zero numbers of images, prompts, seeds and verdicts "
                        f"(got {n}, {len(prompts)}, {len(seeds)}, {len(verdicts)})")
    row_of = {p: k for k, p in enumerate(dict.fromkeys(prompts))}
    col_of = {s: k for k, s in enumerate(sorted({int(s) for s in seeds}))}
    side = _tile_side(max(a.shape[0] for a in ims), max(a.shape[1] for a in ims))
    font = _font()
    line_h = FONT_SIZE + 3
    pad = 4
    cell_w, cell_h = side + 2 * pad, side + 2 * pad + CAPTION_LINES * line_h
    width_chars = max(8, int(side / (FONT_SIZE * 0.55)))
    sheet = Image.new("RGB", (cell_w * len(col_of), cell_h * len(row_of)), "white")
    draw = ImageDraw.Draw(sheet)
    for a, p, s, v in zip(ims, prompts, seeds, verdicts):
        x0, y0 = col_of[int(s)] * cell_w, row_of[p] * cell_h
        tile = _fit(a, side)
        sheet.paste(tile, (x0 + pad + (side - tile.size[0]) // 2, y0 + pad + (side - tile.size[1]) // 2))
        for k, line in enumerate(_caption(p, int(s), v, width_chars)):
            draw.text((x0 + pad, y0 + pad + side + 2 + k * line_h), line, fill="black", font=font)
    return sheet


def write_contact_sheet(images, prompts: Sequence[str], seeds: Sequence[int], verdicts: Sequence[str],
                        path: str | os.PathLike) -> str:
    """Write the sheet of ``images`` (uint8 ``[H, W, 3]`` each, one per prompt/seed/verdict) to
    ``path`` as PNG, atomically; return the sha256 of the file's bytes."""
    import io

    buf = io.BytesIO()
    render_contact_sheet(images, prompts, seeds, verdicts).save(buf, format="PNG")
    data = buf.getvalue()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)
    return hashlib.sha256(data).hexdigest()


def sheet_pages(prompts: Sequence[str], max_rows: int = MAX_ROWS_PER_SHEET) -> list[list[int]]:
    """Indices of the images on each sheet: prompts in first-seen order, ``max_rows`` per sheet."""
    order = list(dict.fromkeys(prompts))
    page_of = {p: k // max_rows for k, p in enumerate(order)}
    pages: list[list[int]] = [[] for _ in range((len(order) + max_rows - 1) // max_rows)]
    for i, p in enumerate(prompts):
        pages[page_of[p]].append(i)
    return pages
