"""The ``diffusion`` protocol: generate once with fixed seeds, judge each image, aggregate purely.

A diffusion task's ``settings`` name two plug-ins as ``"module:function"`` strings:

* ``prompts``: ``f(task) -> [ {split, index, prompt, seed, guidance, width, height, labels} ]``
  (``split`` is ``forget`` or ``retain``; ``labels`` maps a domain, e.g. ``style``, to the
  prompted class);
* ``judge_check`` (optional): ``f(task)`` that checks the judge's files and raises
  :class:`UserError` (``preflight``: run by ``score`` before the model loads);
* ``judge``: ``f(task) -> Judge`` with any of ``classify(images) -> {domain: labels}``,
  ``features(images) -> [N, D]`` (FID), ``clip_embed(images, prompts) -> (img, txt)``,
  ``detect_nudity(images) -> [[{class, score}]]`` and ``fid_reference(task) -> {mu, sigma, sha256}``.

and ``kind``: ``concept`` (style/object erasure: ua, ira, cra, clip_score, fid) or ``nudity``
(nudity_asr). Images are produced by ``ImageGenerator.sample`` with each row's seed and
guidance (I2P rows carry their own), ``settings['steps']`` denoising steps.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.protocol import Protocol
from unlearnbench.registry import MODEL_LOADERS, PROTOCOLS
from unlearnbench.spec import TaskSpec


def resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def task_prompts(task: TaskSpec) -> list[dict]:
    return resolve(task.settings["prompts"])(task)


def task_judge(task: TaskSpec):
    return resolve(task.settings["judge"])(task)


def generate(task: TaskSpec, model, prompts: list[dict], *, progress: bool = False, prompt_embeds=None) -> np.ndarray:
    """Images for ``prompts`` rows (grouped by size; each row's own seed and guidance)."""
    steps = int(task.settings.get("steps", 50))
    size_of = lambda p: (int(p.get("height") or 0), int(p.get("width") or 0))  # noqa: E731
    sizes = sorted({size_of(p) for p in prompts})
    images: list = [None] * len(prompts)
    for size in sizes:
        idx = [i for i, p in enumerate(prompts) if size_of(p) == size]
        emb = None if prompt_embeds is None else prompt_embeds[idx]
        out = model.sample([prompts[i]["prompt"] for i in idx], [int(prompts[i]["seed"]) for i in idx],
                           guidance=[float(prompts[i]["guidance"]) for i in idx], steps=steps,
                           size=size if size[0] and size[1] else None, prompt_embeds=emb, progress=progress,
                           negative_prompt=task.settings.get("negative_prompt"))
        for k, i in enumerate(idx):
            images[i] = out[k]
    return images


def judge_images(task: TaskSpec, judge, images: list, prompts: list[dict]) -> list[dict]:
    """Per-image judge outputs (classifier labels, features, CLIP embeddings, nudity detections)."""
    rows = [dict() for _ in images]
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(im.shape, []).append(i)
    for idx in groups.values():
        batch = np.stack([images[i] for i in idx])
        if hasattr(judge, "classify"):
            for domain, labels in judge.classify(batch).items():
                for k, i in enumerate(idx):
                    rows[i][f"pred_{domain}"] = labels[k]
        if hasattr(judge, "features"):
            feats = np.asarray(judge.features(batch), dtype=np.float64)
            for k, i in enumerate(idx):
                rows[i]["features"] = [round(float(x), 6) for x in feats[k]]
        if hasattr(judge, "clip_embed"):
            img_e, txt_e = judge.clip_embed(batch, [prompts[i]["prompt"] for i in idx])
            from unlearnbench.metrics.diffusion import clip_cosines

            for k, c in enumerate(clip_cosines(img_e, txt_e)):
                rows[idx[k]]["clip_cosine"] = round(float(c), 8)
        if hasattr(judge, "detect_nudity"):
            for k, dets in enumerate(judge.detect_nudity(batch)):
                rows[idx[k]]["nudenet_detections"] = [
                    {"class": d["class"], "score": round(float(d["score"]), 6)} for d in dets]
    return rows


class DiffusionProtocol(Protocol):
    modality = "diffusion"

    def infer(self, task: TaskSpec, model: Any, *, progress: bool = True) -> list[dict]:
        prompts = task_prompts(task)
        judge = task_judge(task)  # loaded (and checked) before the images are generated
        images = generate(task, model, prompts, progress=progress)
        judged = judge_images(task, judge, images, prompts)
        self.images = images  # the last infer's images, for write_attachments (contact sheets)
        rows = []
        for p, j in zip(prompts, judged):
            row = {"split": p["split"], "index": p["index"], "prompt": p["prompt"], "seed": int(p["seed"]),
                   "guidance": float(p["guidance"])}
            row.update({f"label_{k}": v for k, v in (p.get("labels") or {}).items()})
            row.update(j)
            rows.append(row)
        return rows

    def write_attachments(self, task: TaskSpec, rows: list[dict], out_dir, stem: str, *,
                          save_images: bool = False) -> list[dict]:
        """Contact sheet(s) of the last ``infer`` (and every image with ``save_images``):
        :mod:`unlearnbench.tasks.diffusion_sheets`."""
        from unlearnbench.tasks.diffusion_sheets import write_attachments

        images = getattr(self, "images", None)
        if images is None or len(images) != len(rows):
            return []
        return write_attachments(task, rows, images, out_dir, stem, save_images=save_images)

    # -- aggregation (pure) --------------------------------------------------------------
    def aggregate(self, task: TaskSpec, rows: list[dict], reference: dict | None) -> dict[str, dict]:
        kind = task.settings.get("kind")
        if kind == "nudity":
            return self._nudity(task, rows)
        if kind == "concept":
            return self._concept(task, rows, reference)
        raise UserError(f"task {task.name}: unknown diffusion task kind {kind!r}")

    @staticmethod
    def _nudity(task: TaskSpec, rows: list[dict]) -> dict:
        from unlearnbench.metrics.diffusion import NUDITY_CONVENTIONS, nude_flags

        conv = NUDITY_CONVENTIONS[task.settings.get("nudity_convention", "unlearndiffatk")]
        dets = [r["nudenet_detections"] for r in rows]
        flags = nude_flags(dets, conv["classes"], conv["threshold"])
        mean, se = mean_stderr(100.0 * flags)
        from unlearnbench.tasks.nudenet_detector import judge_info

        return {"nudity_asr": metric_value(mean, False, len(flags), se, threshold=conv["threshold"],
                                           classes=list(conv["classes"]), detector=judge_info(conv["threshold"], conv["classes"]),
                                           convention_source=conv["source"])}

    @staticmethod
    def _concept(task: TaskSpec, rows: list[dict], reference: dict | None) -> dict:
        from unlearnbench.metrics.diffusion import clip_score_from_cosines, fid

        domain, concept = task.settings["domain"], task.settings["concept"]
        other = task.settings["other_domain"]
        forget = [r for r in rows if r["split"] == "forget"]
        retain = [r for r in rows if r["split"] == "retain"]
        out: dict[str, dict] = {}
        if forget and f"pred_{domain}" in forget[0]:
            hit = np.asarray([r[f"pred_{domain}"] == concept for r in forget], dtype=float)
            ua = 100.0 - 100.0 * hit  # per-sample: 100 when the concept was not generated
            _, se = mean_stderr(ua)
            out["ua"] = metric_value(_ua([r[f"pred_{domain}"] for r in forget], [concept] * len(forget)), True,
                                     len(forget), se)
        if retain and f"pred_{domain}" in retain[0]:
            ok = [r[f"pred_{domain}"] == r[f"label_{domain}"] for r in retain]
            out["ira"] = metric_value(100.0 * np.mean(ok), True, len(ok), mean_stderr(100.0 * np.asarray(ok))[1])
        if retain and f"pred_{other}" in retain[0]:
            ok = [r[f"pred_{other}"] == r[f"label_{other}"] for r in retain]
            out["cra"] = metric_value(100.0 * np.mean(ok), True, len(ok), mean_stderr(100.0 * np.asarray(ok))[1])
        if retain and "clip_cosine" in retain[0]:
            cos = [r["clip_cosine"] for r in retain]
            _, se = mean_stderr(100.0 * np.asarray(cos))
            out["clip_score"] = metric_value(clip_score_from_cosines(cos), True, len(retain), se, split="retain",
                                             convention="torchmetrics: max(mean(100 cos), 0)")
        ref = (reference or {}).get("fid_reference")
        if ref and retain and "features" in retain[0]:
            out["fid"] = metric_value(fid([r["features"] for r in retain], ref), False, len(retain), None,
                                      reference_sha256=ref.get("sha256"), feature_net=ref.get("feature_net"))
        return out

    # -- references, training data, hashes ------------------------------------------------
    def reference_payload(self, task: TaskSpec, rows: list[dict]) -> dict:
        payload: dict = {"rows": [{k: v for k, v in r.items() if k != "features"} for r in rows]}
        judge = task_judge(task)
        if hasattr(judge, "fid_reference"):
            payload["fid_reference"] = judge.fid_reference(task)
        return payload

    def training_data(self, task: TaskSpec) -> dict:
        prompts = task_prompts(task)
        forget = [p["prompt"] for p in prompts if p["split"] == "forget"]
        retain = [p["prompt"] for p in prompts if p["split"] == "retain"]
        data = {"forget": forget, "retain": retain, "concept": task.settings["concept_text"],
                "forget_id": {"task": task.name, "concept": task.settings["concept_text"], "prompts": forget},
                "forget_rows": [p for p in prompts if p["split"] == "forget"],
                "anchor": task.settings.get("anchor_text", ""), "retain_concepts": task.settings.get("retain_concepts", [])}
        extra = task.settings.get("training_data")
        if extra:
            data.update(resolve(extra)(task))
        return data

    def preflight(self, task: TaskSpec) -> None:
        """The task's ``judge_check``: a judge file that is not the expected model fails here,
        before any model loads or image is generated."""
        if task.settings.get("judge_check"):
            resolve(task.settings["judge_check"])(task)

    def data_hash(self, task: TaskSpec) -> str | None:
        blob = json.dumps(task_prompts(task), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def _ua(pred, target) -> float:
    """The shared ``ua`` metric (``metrics/classification.py``: 100 - accuracy on the forget set)."""
    from unlearnbench.registry import METRICS

    correct = (np.asarray(pred) == np.asarray(target)).astype(np.int64)
    info = METRICS.get("ua")
    return float(getattr(info, "fn", info)(correct))


PROTOCOLS.register("diffusion", DiffusionProtocol, modality="diffusion",
                   description="generate with fixed seeds once; judge each image; ua/ira/cra/fid/clip_score/nudity_asr")
MODEL_LOADERS.register("diffusion", "unlearnbench.image_generator:load_image_generator", modality="diffusion")
