"""mini-canvas: an embedded UnlearnCanvas (objects x styles) with its own text-to-image model.

Data: procedurally drawn ``S x S`` images of an *object* (shape) painted in a *style*
(palette + background texture), captioned ``"a {object} in {style} style"``. Models, all
trained here from scratch and cached under ``$UNLEARNBENCH_HOME/worlds/mini-canvas/<recipe hash>``:

* ``target``: a tiny latent ``StableDiffusionPipeline`` (VAE + CLIP text encoder + UNet) trained on every pair;
* ``retain/<domain>-<concept>``: the same recipe trained without the concept's images (built on first use);
* judges: a style classifier and an object classifier (their pooled features are the offline FID space);
* a tiny open_clip model trained contrastively on the captions (CLIP score).

Tasks ``mini-canvas/style/<name>`` and ``mini-canvas/object/<name>`` follow UnlearnCanvas'
protocol: forget prompts = every pair with the concept (UA with the concept's own
classifier), retain prompts = every other pair (IRA with the same classifier, CRA with the
other one), fixed seeds, CFG. Scale from ``UNLEARNBENCH_SCALE``: ``test`` (3x3 concepts,
seconds) or ``default`` (6 objects x 5 styles).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from unlearnbench.cache import cache_dir, scale
from unlearnbench.errors import UserError
from unlearnbench.protocol import World
from unlearnbench.registry import TASKS, WORLDS
from unlearnbench.spec import TaskSpec

OBJECTS = ("circle", "square", "triangle", "cross", "ring", "diamond")
# style -> (background RGB, foreground RGB, background texture)
STYLES = {
    "sunset": ((0.98, 0.55, 0.20), (0.45, 0.05, 0.45), "plain"),
    "ocean": ((0.05, 0.25, 0.60), (0.60, 0.95, 0.95), "hstripes"),
    "forest": ((0.10, 0.40, 0.12), (0.95, 0.90, 0.35), "dots"),
    "ink": ((0.95, 0.95, 0.92), (0.08, 0.08, 0.10), "checker"),
    "neon": ((0.05, 0.02, 0.10), (1.00, 0.15, 0.85), "vstripes"),
}

RECIPES = {
    # the cheapest world whose target still draws each style in its own colours (the default suite builds it)
    "test": {"size": 16, "objects": 3, "styles": 3, "per_pair": 6, "vae_steps": 40, "t2i_steps": 150, "batch": 16,
             "min_snr_gamma": 5.0, "judge_steps": 100, "clip_steps": 15, "eval_seeds": 1, "steps": 4, "guidance": 3.0,
             "method_scale": {"esd": {"iterations": 3, "lr": 1e-4, "ddim_steps": 4},
                              "salun": {"iterations": 3, "lr": 1e-4}, "advunlearn": {"iterations": 2, "lr": 1e-4,
                                                                                      "attack_steps": 2, "ddim_steps": 4}}},
    # t2i_steps / min_snr_gamma: the target draws the asked object and style on >= 90 % of the prompts
    # (tests/perf/canvas_world_check.py; 800 plain-MSE steps drew the seed's blob, not the object: 33 %)
    "default": {"size": 16, "objects": 6, "styles": 5, "per_pair": 40, "vae_steps": 250, "t2i_steps": 1200,
                "batch": 32, "min_snr_gamma": 5.0, "judge_steps": 600, "clip_steps": 300, "eval_seeds": 2, "steps": 20,
                "guidance": 3.0,
                # scaled-down method schedules for the tiny model (paper values are for SD v1.4), lr tuned on
                # mini-canvas/object/circle, seed 0 (UA / IRA / CRA, tests/perf/canvas_robustness.py):
                #   ESD-u 150 it: lr 1e-4 20 / 88 / 100; 2.5e-4 70 / 50 / 56; 5e-4 100 / 26 / 62
                #   SalUn 150 it: lr 1e-4 50 / 98 / 100; 2.5e-4 100 / 88 / 100; 5e-4 100 / 76 / 96
                #   AdvUnlearn 60 it: lr 1e-4 40 / 88 / 100; 2.5e-4 80 / 88 / 100 (UnlearnDiffAtk ASR: README)
                "method_scale": {"esd": {"iterations": 150, "lr": 2.5e-4, "ddim_steps": 20},
                                 "salun": {"iterations": 150, "lr": 2.5e-4},
                                 "advunlearn": {"iterations": 60, "lr": 2.5e-4, "attack_steps": 5, "ddim_steps": 20}}},
}
# 2: objects redrawn to differ in coarse layout, judges also trained on VAE reconstructions,
#    Min-SNR text-to-image training (v1's object world was the seed's blob: base object UA 70, IRA 28)
VERSION = 2


def recipe() -> dict:
    return {"world": "mini-canvas", "version": VERSION, "seed": 0, **RECIPES[scale()]}


def recipe_hash(r: dict) -> str:
    """Hash of what the world's models depend on (method schedules are not part of it)."""
    core = {k: v for k, v in r.items() if k != "method_scale"}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:16]


def concepts(r: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return OBJECTS[: r["objects"]], tuple(STYLES)[: r["styles"]]


def caption(obj: str, style: str) -> str:
    return f"a {obj} in {style} style"


# -- drawing ---------------------------------------------------------------------------------
def draw(obj: str, style: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``[S, S, 3]`` float image in [0, 1]."""
    bg, fg, tex = STYLES[style]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cy, cx = size / 2 - 0.5 + rng.uniform(-0.75, 0.75, 2)
    r = size * rng.uniform(0.40, 0.44)  # every object spans most of the canvas
    dy, dx = yy - cy, xx - cx
    d = np.hypot(dx, dy)
    # shapes that differ in their coarse layout (corners, axis tips, centre), not only in
    # 1-pixel edge details, so they survive the 2x-downsampling VAE and a small UNet
    masks = {
        "circle": d < r * 0.72,
        "ring": (d < r) & (d > r * 0.55),
        "square": np.maximum(np.abs(dx), np.abs(dy)) < r * 0.92,
        "diamond": np.abs(dx) + np.abs(dy) < r * 1.05,
        "cross": ((np.abs(dx) < r * 0.3) & (np.abs(dy) < r)) | ((np.abs(dy) < r * 0.3) & (np.abs(dx) < r)),
        "triangle": (dy < r * 0.8) & (dy > -r) & (np.abs(dx) < (dy + r) * 0.55),
    }
    pattern = {
        "plain": np.zeros((size, size)),
        "hstripes": (yy // 2 % 2),
        "vstripes": (xx // 2 % 2),
        "checker": ((yy // 2 + xx // 2) % 2),
        "dots": ((yy % 4 == 1) & (xx % 4 == 1)).astype(float),
    }[tex]
    bgc = np.asarray(bg) * (1 - 0.35 * pattern[..., None]) + 0.35 * pattern[..., None] * (1 - np.asarray(bg))
    img = np.where(masks[obj][..., None], np.asarray(fg), bgc)
    img = img * rng.uniform(0.95, 1.05) + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1)


def dataset(r: dict) -> dict:
    """All images, captions and labels of the world (deterministic)."""
    objs, styles = concepts(r)
    rng = np.random.default_rng(r["seed"])
    imgs, caps, obj_l, sty_l = [], [], [], []
    for o in objs:
        for s in styles:
            for _ in range(r["per_pair"]):
                imgs.append(draw(o, s, rng, r["size"]))
                caps.append(caption(o, s))
                obj_l.append(objs.index(o))
                sty_l.append(styles.index(s))
    return {"images": np.stack(imgs).astype(np.float32), "captions": caps, "object": np.asarray(obj_l),
            "style": np.asarray(sty_l)}


# -- the world -------------------------------------------------------------------------------
class MiniCanvasWorld(World):
    """Builds and caches the mini-canvas models (see module docstring)."""

    def root(self, r: dict | None = None) -> Path:
        r = r or recipe()
        return cache_dir("worlds", "mini-canvas", recipe_hash(r))

    def build(self, progress: bool = True) -> Path:
        """Build data, VAE, target pipeline, judges and tiny CLIP (skips what exists), one
        thread (:func:`unlearnbench.threads.thread_policy`: world bytes independent of the machine)."""
        from unlearnbench.threads import thread_policy

        with thread_policy(0, reproducible=True):
            return self._build(progress)

    def _build(self, progress: bool) -> Path:
        import torch

        from unlearnbench.results import atomic_write_json
        from unlearnbench.tasks import mini_canvas_models as mm
        from unlearnbench.tasks import mini_canvas_train as tr

        r = recipe()
        root = self.root(r)
        if (root / "world.json").exists():
            return root
        root.mkdir(parents=True, exist_ok=True)
        data = dataset(r)
        x = torch.as_tensor(data["images"]).permute(0, 3, 1, 2).contiguous()
        objs, styles = concepts(r)
        words = [caption(o, s) for o in OBJECTS for s in STYLES]
        tok_dir = mm.write_clip_tokenizer(words, root / "tokenizer_src")
        comps = mm.tiny_components(tok_dir, image_size=r["size"], seed=r["seed"])
        tr.train_vae(comps["vae"], x, steps=r["vae_steps"], batch=r["batch"], seed=r["seed"], progress=progress)
        comps["vae"].save_pretrained(str(root / "vae"))
        self._train_pipeline(root / "target", r, data, None, progress)
        # judges see every render twice: as drawn and through the world's VAE (the sharpest image
        # the generator can produce), so they classify what is drawn, not how crisply
        x_judge = torch.cat([x, tr.reconstruct(comps["vae"], x)])
        for domain, n in (("style", len(styles)), ("object", len(objs))):
            judge = mm.judge_cnn(n)
            tr.train_classifier(judge, x_judge, np.concatenate([data[domain]] * 2), steps=r["judge_steps"],
                                batch=r["batch"], seed=r["seed"], progress=progress,
                                desc=f"mini-canvas: {domain} judge")
            from safetensors.torch import save_file

            save_file(judge.state_dict(), str(root / f"judge_{domain}.safetensors"))
        clip = mm.tiny_open_clip(image_size=r["size"])
        tr.train_clip(clip, mm.open_clip_tokenizer(), x, data["captions"], steps=r["clip_steps"], batch=r["batch"],
                      seed=r["seed"], progress=progress)
        from safetensors.torch import save_file

        save_file(clip.state_dict(), str(root / "clip.safetensors"))
        atomic_write_json(root / "world.json", {"recipe": r, "objects": objs, "styles": styles})
        return root

    def _train_pipeline(self, out: Path, r: dict, data: dict, exclude: tuple[str, str] | None, progress: bool) -> Path:
        """Train text encoder + UNet from scratch (shared VAE), optionally without one concept's images."""
        from unlearnbench.threads import thread_policy

        with thread_policy(0, reproducible=True):
            return self._train_pipeline_pinned(out, r, data, exclude, progress)

    def _train_pipeline_pinned(self, out: Path, r: dict, data: dict, exclude: tuple[str, str] | None,
                               progress: bool) -> Path:
        import torch
        from diffusers import AutoencoderKL

        from unlearnbench.tasks import mini_canvas_models as mm
        from unlearnbench.tasks import mini_canvas_train as tr

        root = self.root(r)
        objs, styles = concepts(r)
        keep = np.ones(len(data["captions"]), dtype=bool)
        if exclude is not None:
            domain, name = exclude
            names = styles if domain == "style" else objs
            keep = data[domain] != names.index(name)
        comps = mm.tiny_components(root / "tokenizer_src", image_size=r["size"], seed=r["seed"])
        comps["vae"] = AutoencoderKL.from_pretrained(str(root / "vae"))
        x = torch.as_tensor(data["images"][keep]).permute(0, 3, 1, 2).contiguous()
        lat = tr.encode_latents(comps["vae"], x)
        caps = [c for c, k in zip(data["captions"], keep) if k]
        tr.train_text_to_image(comps["unet"], comps["text_encoder"], comps["tokenizer"], lat, caps,
                               steps=r["t2i_steps"], batch=r["batch"], min_snr_gamma=r["min_snr_gamma"], seed=r["seed"],
                               progress=progress,
                               desc=f"mini-canvas: {'target' if exclude is None else 'retain w/o ' + exclude[1]}")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        mm.assemble_pipeline(comps).save_pretrained(str(tmp), safe_serialization=True)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        return out

    def checkpoint(self, task: TaskSpec, role: str) -> Path:
        root = self.build()
        if role == "target":
            return root / "target"
        if role == "retain":
            domain, name = task.settings["domain"], task.settings["concept"]
            out = root / "retain" / f"{domain}-{name}"
            if not (out / "model_index.json").exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                self._train_pipeline(out, recipe(), dataset(recipe()), (domain, name), progress=True)
            return out
        raise UserError(f"mini-canvas has models 'target' and 'retain', not {role!r}")

    def reference(self, task: TaskSpec) -> Path:
        from unlearnbench.reference import cache_name
        from unlearnbench.runner import build_reference

        out = self.build() / "references" / cache_name(task)
        if not out.exists():
            build_reference(task.name, str(self.checkpoint(task, "retain")), out, device="cpu")
        return out


WORLD = MiniCanvasWorld()
WORLDS.register("mini-canvas", WORLD, modality="diffusion", description="objects x styles, tiny SD pipeline")


# -- judge -----------------------------------------------------------------------------------
class MiniCanvasJudge:
    """Style + object classifiers, their features (FID space) and the tiny CLIP of one built world."""

    def __init__(self, root: Path):
        import torch
        from safetensors.torch import load_file

        from unlearnbench.tasks import mini_canvas_models as mm

        meta = json.loads((root / "world.json").read_text())
        self.root, self.names = root, {"style": meta["styles"], "object": meta["objects"]}
        self.nets = {}
        for d, names in self.names.items():
            net = mm.judge_cnn(len(names))
            net.load_state_dict(load_file(str(root / f"judge_{d}.safetensors")))
            self.nets[d] = net.eval()
        self.clip = mm.tiny_open_clip(image_size=meta["recipe"]["size"])
        self.clip.load_state_dict(load_file(str(root / "clip.safetensors")))
        self.clip.eval()
        self.tokenizer = mm.open_clip_tokenizer()
        self.torch = torch

    def _x(self, images):
        return self.torch.as_tensor(np.asarray(images, dtype=np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()

    def classify(self, images) -> dict:
        with self.torch.no_grad():
            x = self._x(images)
            return {d: [self.names[d][int(i)] for i in net(x).argmax(1)] for d, net in self.nets.items()}

    def features(self, images) -> np.ndarray:
        with self.torch.no_grad():
            x = self._x(images)
            return self.torch.cat([self.nets[d].features(x) for d in ("style", "object")], 1).double().numpy()

    def clip_embed(self, images, prompts):
        with self.torch.no_grad():
            return (self.clip.encode_image(self._x(images)).double().numpy(),
                    self.clip.encode_text(self.tokenizer(list(prompts))).double().numpy())

    def fid_reference(self, task: TaskSpec) -> dict:
        """Gaussian statistics of the real images of the task's retain pairs, cached by content hash."""
        from unlearnbench.metrics.diffusion import gaussian_stats

        data = dataset(recipe())
        domain, concept = task.settings["domain"], task.settings["concept"]
        keep = data[domain] != self.names[domain].index(concept)
        imgs = np.round(data["images"][keep] * 255).astype(np.uint8)
        h = hashlib.sha256(imgs.tobytes() + (self.root / "judge_style.safetensors").read_bytes()
                           + (self.root / "judge_object.safetensors").read_bytes()).hexdigest()
        path = self.root / "fid_stats" / f"{h[:24]}.npz"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            mu, sigma = gaussian_stats(self.features(imgs))
            np.savez(path, mu=mu, sigma=sigma)
        st = np.load(path)
        return {"mu": st["mu"].tolist(), "sigma": st["sigma"].tolist(), "sha256": h, "n": int(keep.sum()),
                "feature_net": "mini-canvas style+object judge features (not Inception)"}


_JUDGES: dict = {}


def judge(task: TaskSpec) -> MiniCanvasJudge:
    root = WORLD.build()
    if root not in _JUDGES:
        _JUDGES[root] = MiniCanvasJudge(root)
    return _JUDGES[root]


# -- tasks -----------------------------------------------------------------------------------
def prompts(task: TaskSpec) -> list[dict]:
    r = recipe()
    objs, styles = concepts(r)
    domain, concept = task.settings["domain"], task.settings["concept"]
    rows = []
    for o in objs:
        for s in styles:
            split = "forget" if (s if domain == "style" else o) == concept else "retain"
            for k in range(r["eval_seeds"]):
                rows.append({"split": split, "index": len(rows), "prompt": caption(o, s), "seed": 1000 + k,
                             "guidance": r["guidance"], "width": r["size"], "height": r["size"],
                             "labels": {"style": s, "object": o}})
    return rows


def concept_images(task: TaskSpec) -> dict:
    """Training images of the concept (uint8) for methods and attacks that need them (SalUn, UnlearnDiffAtk)."""
    data = dataset(recipe())
    objs, styles = concepts(recipe())
    names = styles if task.settings["domain"] == "style" else objs
    keep = data[task.settings["domain"]] == names.index(task.settings["concept"])
    u8 = np.round(data["images"] * 255).astype(np.uint8)
    rest = np.flatnonzero(~keep)[:: max(1, int((~keep).sum()) // max(1, int(keep.sum())))]  # as many retain images
    return {"concept_images": u8[keep], "concept_captions": [c for c, k in zip(data["captions"], keep) if k],
            "retain_images": u8[rest], "retain_captions": [data["captions"][i] for i in rest]}


def make_task(domain: str, name: str) -> TaskSpec:
    r = recipe()
    objs, styles = concepts(r)
    names = styles if domain == "style" else objs
    if name not in names:
        raise UserError(f"mini-canvas has no {domain} {name!r} at scale {scale()!r}; {domain}s: {', '.join(names)}")
    other = "object" if domain == "style" else "style"
    text = f"{name} style" if domain == "style" else name
    return TaskSpec(
        name=f"mini-canvas/{domain}/{name}", modality="diffusion", protocol="diffusion", version=VERSION,
        source={"kind": "world", "name": "mini-canvas", "recipe": recipe_hash(r)},
        splits={"forget": f"prompts with {domain} {name}", "retain": "all other object x style prompts"},
        settings={"kind": "concept", "domain": domain, "other_domain": other, "concept": name, "concept_text": text,
                  "anchor_text": "", "retain_concepts": [f"{n} style" if domain == "style" else n for n in names if n != name],
                  "prompts": "unlearnbench.tasks.mini_canvas:prompts", "judge": "unlearnbench.tasks.mini_canvas:judge",
                  "training_data": "unlearnbench.tasks.mini_canvas:concept_images", "steps": r["steps"],
                  "scale": scale(), "attack_judge": domain, "method_scale": r["method_scale"]},
        metrics=("ua", "ira", "cra", "clip_score", "fid"), references=("retain",), rank_by="ua", world="mini-canvas",
        description=f"erase the {domain} '{name}' from the mini-canvas text-to-image model",
    )


TASKS.register_pattern("mini-canvas/style/<name>", r"mini-canvas/(?P<domain>style)/(?P<name>[a-z]+)", make_task,
                       modality="diffusion", description="erase one style of the mini-canvas world")
TASKS.register_pattern("mini-canvas/object/<name>", r"mini-canvas/(?P<domain>object)/(?P<name>[a-z]+)", make_task,
                       modality="diffusion", description="erase one object of the mini-canvas world")
