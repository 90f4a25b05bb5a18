"""A folder of images given by the user (e.g. ``$UNLEARNBENCH_I2P_IMAGES``), checked before any work.

Every visible file must be an image PIL can decode (``.png``, ``.jpg``, ``.jpeg``, ``.webp``,
``.bmp``); anything else is a one-line :class:`UserError` naming the file, never a traceback
halfway through an attack or an unlearning run. Hidden files (``.DS_Store``) are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_files(folder: str | os.PathLike, what: str = "image folder") -> list[Path]:
    """The folder's image files (sorted by name); checks names and that each one decodes."""
    from PIL import Image, UnidentifiedImageError

    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"{what} not found: {d}")
    files = sorted(p for p in d.iterdir() if not p.name.startswith("."))
    if not files:
        raise UserError(f"{what} {d} is empty")
    for p in files:
        if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{what} {d} holds {p.name}, which is not an image "
                            f"(only {', '.join(IMAGE_SUFFIXES)} files may be there)")
        try:
            with Image.open(p) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise UserError(f"{p} is not a readable image ({type(e).__name__})") from None
    return files


def read_images(folder: str | os.PathLike, what: str = "image folder") -> tuple[list[Path], np.ndarray]:
    """``(files, uint8 [N, H, W, 3] RGB)``; all images must have one size."""
    from PIL import Image

    files = image_files(folder, what)
    arrays = []
    for p in files:
        with Image.open(p) as im:
            arrays.append(np.asarray(im.convert("RGB")))
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise UserError(f"{what} {folder}: images differ in size ({sizes[0]} and {sizes[-1]}); give one size")
    return files, np.stack(arrays)
