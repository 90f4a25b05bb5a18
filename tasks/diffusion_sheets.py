"""What a diffusion score leaves for a person to look at: contact sheets and (optionally) every image.

``write_attachments`` is called by the diffusion protocol with the images of its last
``infer``: it writes ``<stem>.contact_sheet.png`` beside the result (prompt rows x seed
columns, each tile captioned with prompt, seed and the judge's verdict; long prompt lists go
on ``<stem>.contact_sheet-2.png`` ...; I2P images judged nude are pixelated there), and with ``save_images`` every generated image as
``<stem>.images/<index>_<split>_s<seed>.png``. It returns the ``attachments`` entries
(roles ``contact_sheet`` with sha256, ``images`` for the folder with sha256 null).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from unlearnbench.contact_sheet import sheet_pages, write_contact_sheet
from unlearnbench.spec import TaskSpec


def nudity_verdict(task: TaskSpec, row: dict) -> str:
    """``NUDE FEET_EXPOSED 0.62`` (the highest exposed class over the threshold) or ``safe``."""
    from unlearnbench.metrics.diffusion import NUDITY_CONVENTIONS

    conv = NUDITY_CONVENTIONS[task.settings.get("nudity_convention", "unlearndiffatk")]
    hits = [d for d in row.get("nudenet_detections") or []
            if d["class"] in conv["classes"] and float(d["score"]) > conv["threshold"]]
    if not hits:
        return f"safe (no exposed class > {conv['threshold']:g})"
    top = max(hits, key=lambda d: float(d["score"]))
    shown = " (pixelated)" if task.settings.get("sheet_pixelate_flagged") else ""
    return f"NUDE {top['class']} {float(top['score']):.2f}{shown}"


def concept_verdict(task: TaskSpec, row: dict) -> str:
    """``forget: style=ink not sunset; object ok``: each judge's label against the prompt's."""
    parts = []
    for domain in (task.settings.get("domain"), task.settings.get("other_domain")):
        pred, want = row.get(f"pred_{domain}"), row.get(f"label_{domain}")
        if pred is not None:
            parts.append(f"{domain} ok" if pred == want else f"{domain}={pred} not {want}")
    return f"{row.get('split', '?')}: " + "; ".join(parts)


VERDICTS = {"nudity": nudity_verdict, "concept": concept_verdict}
PIXEL_BLOCKS = 12  # a tile flagged nude is shown as 12 x 12 blocks (the caption says why)


def pixelate(image: np.ndarray, blocks: int = PIXEL_BLOCKS) -> np.ndarray:
    """``image`` reduced to ``blocks`` x ``blocks`` mean colours, same size (nothing recognisable)."""
    from PIL import Image

    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((blocks, blocks), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


def sheet_image(task: TaskSpec, row: dict, image: np.ndarray) -> np.ndarray:
    """What the sheet shows: with ``settings['sheet_pixelate_flagged']`` (I2P) an image the judge
    flags nude is pixelated, so a leaderboard page never shows it; ``--save-images`` keeps it."""
    if task.settings.get("sheet_pixelate_flagged") and verdict(task, row).startswith("NUDE"):
        return pixelate(image)
    return image


def verdict(task: TaskSpec, row: dict) -> str:
    fn = VERDICTS.get(task.settings.get("kind"))
    return fn(task, row) if fn else ""


def write_attachments(task: TaskSpec, rows: list[dict], images: list, out_dir: str | os.PathLike, stem: str, *,
                      save_images: bool = False) -> list[dict]:
    out = Path(out_dir)
    prompts = [r["prompt"] for r in rows]
    entries = []
    for k, idx in enumerate(sheet_pages(prompts)):
        name = f"{stem}.contact_sheet.png" if k == 0 else f"{stem}.contact_sheet-{k + 1}.png"
        sha = write_contact_sheet([sheet_image(task, rows[i], images[i]) for i in idx], [prompts[i] for i in idx],
                                  [int(rows[i]["seed"]) for i in idx], [verdict(task, rows[i]) for i in idx],
                                  out / name)
        entries.append({"role": "contact_sheet", "path": name, "sha256": sha})
    if save_images:
        entries.append(save_all_images(rows, images, out, stem))
    return entries


def save_all_images(rows: list[dict], images: list, out_dir: Path, stem: str) -> dict:
    """Every image as a PNG in ``<stem>.images/`` with a ``SHA256SUMS`` listing; the folder's entry."""
    from PIL import Image

    folder = out_dir / f"{stem}.images"
    folder.mkdir(parents=True, exist_ok=True)
    sums = []
    for r, im in zip(rows, images):
        name = f"{int(r['index']):05d}_{r['split']}_s{int(r['seed'])}.png"
        Image.fromarray(im).save(folder / name, format="PNG")
        sums.append(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return {"role": "images", "path": folder.name, "sha256": None}
