"""UnlearnCanvas (Zhang et al., NeurIPS 2024 D&B): ``unlearncanvas/style/<Name>``, ``unlearncanvas/object/<Name>``.

Protocol of the released evaluation (``machine_unlearning/evaluation``): for every style x
object pair the prompt ``"A {object} image in {style} style."`` (underscores as spaces), seeds
188, 288, 588, 688, 888, guidance 9.0, 100 steps, 512 x 512; UA on the prompts with the
forgotten concept, IRA / CRA on the others, judged by their ViT-Large style (51-way, the
``style50`` model's label space) and object (20-way) classifiers, fed as their
``quantitative/accuracy.py`` feeds them (JPEG as saved by their sampling scripts, resize to
224, ``ToTensor``, ``Normalize([0.5], [0.5])``: :func:`classifier_input`). Label index =
position in the lists below (copied in their order from UnlearnCanvas ``constants/const.py``).

The classifier checkpoints are named by ``$UNLEARNBENCH_UNLEARNCANVAS_STYLE_CKPT`` and
``$UNLEARNBENCH_UNLEARNCANVAS_OBJECT_CKPT`` (read with ``torch.load(weights_only=True)``,
``model_state_dict`` of a timm ``vit_large_patch16_224`` with a new linear head) — nothing is
downloaded. ``settings['seeds']`` / ``['objects']`` can shrink the grid for smoke runs.
"""

from __future__ import annotations

import os

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.registry import TASKS
from unlearnbench.spec import TaskSpec

STYLES = ["Abstractionism", "Artist_Sketch", "Blossom_Season", "Bricks", "Byzantine", "Cartoon", "Cold_Warm",
          "Color_Fantasy", "Comic_Etch", "Crayon", "Cubism", "Dadaism", "Dapple", "Defoliation", "Early_Autumn",
          "Expressionism", "Fauvism", "French", "Glowing_Sunset", "Gorgeous_Love", "Greenfield", "Impressionism",
          "Ink_Art", "Joy", "Liquid_Dreams", "Magic_Cube", "Meta_Physics", "Meteor_Shower", "Monet", "Mosaic",
          "Neon_Lines", "On_Fire", "Pastel", "Pencil_Drawing", "Picasso", "Pop_Art", "Red_Blue_Ink", "Rust",
          "Seed_Images", "Sketch", "Sponge_Dabbed", "Structuralism", "Superstring", "Surrealism", "Ukiyoe",
          "Van_Gogh", "Vibrant_Flow", "Warm_Love", "Warm_Smear", "Watercolor", "Winter"]
OBJECTS = ["Architectures", "Bears", "Birds", "Butterfly", "Cats", "Dogs", "Fishes", "Flame", "Flowers", "Frogs",
           "Horses", "Human", "Jellyfish", "Rabbits", "Sandwiches", "Sea", "Statues", "Towers", "Trees", "Waterfalls"]
SEEDS = (188, 288, 588, 688, 888)


def prompt_text(obj: str, style: str) -> str:
    return f"A {obj} image in {style.replace('_', ' ')} style."


def prompts(task: TaskSpec) -> list[dict]:
    s = task.settings
    rows = []
    for style in s.get("styles") or STYLES:
        for obj in s.get("objects") or OBJECTS:
            concept_hit = (style if s["domain"] == "style" else obj) == s["concept"]
            for seed in s.get("seeds") or SEEDS:
                rows.append({"split": "forget" if concept_hit else "retain", "index": len(rows),
                             "prompt": prompt_text(obj, style), "seed": int(seed), "guidance": float(s["guidance"]),
                             "width": s["size"], "height": s["size"], "labels": {"style": style, "object": obj}})
    return rows


JUDGE_INPUT = {"jpeg_quality": 75, "size": 224, "mean": 0.5, "std": 0.5}  # see classifier_input


def classifier_input(images, jpeg_quality: int | None = JUDGE_INPUT["jpeg_quality"], size: int = JUDGE_INPUT["size"]):
    """The tensor UnlearnCanvas's classifiers see for uint8 RGB ``[N, H, W, 3]`` images.

    Their evaluation saves each sample as ``.jpg`` with PIL's defaults (quality 75,
    ``sampling_unlearned_models/*.py``) and ``quantitative/accuracy.py`` reads it back and applies
    ``Resize((224, 224))`` (PIL bilinear), ``ToTensor`` (/255) and ``Normalize([0.5], [0.5])``,
    so pixels reach the ViT in [-1, 1]. The same steps here, with PIL directly;
    ``jpeg_quality=None`` skips the JPEG round trip. Returns float32 ``[N, 3, size, size]``.
    """
    import io

    import torch
    from PIL import Image

    out = []
    for a in np.asarray(images):
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise UserError(f"UnlearnCanvas judge: expected uint8 RGB images [H, W, 3], got {a.dtype} {a.shape}")
        im = Image.fromarray(a)
        if jpeg_quality is not None:
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=int(jpeg_quality))
            im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        x = np.asarray(im.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
        out.append((x.transpose(2, 0, 1) - JUDGE_INPUT["mean"]) / JUDGE_INPUT["std"])
    return torch.as_tensor(np.stack(out))


class UnlearnCanvasJudge:
    """Their ViT-Large style and object classifiers (timm) on :func:`classifier_input` tensors."""

    def __init__(self):
        import torch

        self.torch = torch
        self.nets, self.names = {}, {"style": STYLES, "object": OBJECTS}
        for domain, env in (("style", "UNLEARNBENCH_UNLEARNCANVAS_STYLE_CKPT"),
                            ("object", "UNLEARNBENCH_UNLEARNCANVAS_OBJECT_CKPT")):
            path = os.environ.get(env)
            if not path or not os.path.isfile(path):
                raise UserError(f"UnlearnCanvas needs its {domain} classifier: set {env}=path/to/checkpoint")
            try:
                import timm
            except ImportError:
                raise UserError("UnlearnCanvas judges need timm: pip install timm") from None
            sd = read_classifier_state(path, domain)  # checked before the 300M-parameter net is built
            net = timm.create_model("vit_large_patch16_224", pretrained=False, num_classes=len(self.names[domain]))
            self.nets[domain] = load_classifier(net, sd, path, domain).eval()

    def classify(self, images) -> dict:
        x = classifier_input(images)
        with self.torch.no_grad():
            return {d: [self.names[d][int(i)] for i in net(x).argmax(1)] for d, net in self.nets.items()}


def read_classifier_state(path: str, domain: str) -> dict:
    """The checkpoint's ``model_state_dict`` (weights only), with the shapes that identify their
    classifier checked: a ViT-L/16 patch embedding and a ``len(labels)``-way head on 1024 features."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path}: not a readable weights-only torch checkpoint ({type(e).__name__})") from None
    sd = sd.get("model_state_dict", sd) if isinstance(sd, dict) else sd
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path}: holds no state dict of tensors (expected 'model_state_dict' of a timm "
                        "vit_large_patch16_224)")
    n = len(STYLES) if domain == "style" else len(OBJECTS)
    for key, shape in (("patch_embed.proj.weight", (1024, 3, 16, 16)), ("head.weight", (n, 1024))):
        got = tuple(sd[key].shape) if key in sd else None
        if got != shape:
            raise UserError(f"{path} is not UnlearnCanvas's {domain} classifier (a timm vit_large_patch16_224 with a "
                            f"{n}-way head): {key} " + (f"has shape {got}, expected {shape}" if got else "is missing"))
    return sd


def load_classifier(net, sd: dict, path: str, domain: str):
    """``net`` with ``sd`` loaded; any key or shape that does not fit is a :class:`UserError`."""
    want = net.state_dict()
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    wrong = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}" if unexpected
                  else f"{wrong[0]} has shape {tuple(sd[wrong[0]].shape)}, expected {tuple(want[wrong[0]].shape)}")
        raise UserError(f"{path} is not UnlearnCanvas's {domain} classifier: {detail}")
    net.load_state_dict(sd)
    return net


_JUDGE = None


def judge(task: TaskSpec) -> UnlearnCanvasJudge:
    global _JUDGE
    if _JUDGE is None:
        _JUDGE = UnlearnCanvasJudge()
    return _JUDGE


def make_task(domain: str, name: str) -> TaskSpec:
    names = STYLES if domain == "style" else OBJECTS
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=2)
        raise UserError(f"UnlearnCanvas has no {domain} {name!r}" + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))
    others = [n for n in names if n != name]
    text = f"{name.replace('_', ' ')} style" if domain == "style" else name
    return TaskSpec(
        name=f"unlearncanvas/{domain}/{name}", modality="diffusion", protocol="diffusion", version=2,
        source={"kind": "protocol", "paper": "UnlearnCanvas (Zhang et al. 2024)", "label_space": "style50 + 20 objects"},
        splits={"forget": f"prompts with {domain} {name}", "retain": "every other style x object prompt"},
        settings={"kind": "concept", "domain": domain, "other_domain": "object" if domain == "style" else "style",
                  "concept": name, "concept_text": text, "anchor_text": "",
                  "retain_concepts": [f"{n.replace('_', ' ')} style" if domain == "style" else n for n in others],
                  "prompts": "unlearnbench.tasks.unlearncanvas:prompts", "judge": "unlearnbench.tasks.unlearncanvas:judge",
                  "judge_check": "unlearnbench.tasks.unlearncanvas:judge",
                  "steps": 100, "guidance": 9.0, "size": 512, "attack_judge": domain},
        metrics=("ua", "ira", "cra", "fid"), rank_by="ua",
        description=f"UnlearnCanvas: erase the {domain} {name} (SD v1.5 fine-tuned on UnlearnCanvas)",
    )


TASKS.register_pattern("unlearncanvas/style/<Name>", r"unlearncanvas/(?P<domain>style)/(?P<name>[A-Za-z_]+)", make_task,
                       modality="diffusion", description="UnlearnCanvas style unlearning (51 styles)")
TASKS.register_pattern("unlearncanvas/object/<Name>", r"unlearncanvas/(?P<domain>object)/(?P<name>[A-Za-z_]+)", make_task,
                       modality="diffusion", description="UnlearnCanvas object unlearning (20 objects)")
