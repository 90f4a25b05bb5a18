"""UnlearnCanvas (Zhang et al., NeurIPS 2024 D&B): ``unlearncanvas/style/<Name>``, ``unlearncanvas/object/<Name>``.

Protocol of the released evaluation (``machine_unlearning/evaluation``): for every style x
object pair the prompt ``"A {object} image in {style} style."`` (underscores as spaces), seeds
188, 288, 588, 688, 888, guidance 9.0, 100 steps, 512 x 512; UA on the prompts with the
forgotten concept, IRA / CRA on the others, judged by their ViT-Large style (51-way, the
``style50`` model's label space) and object (20-way) classifiers. Label index = position in
the lists below (copied in their order from UnlearnCanvas ``constants/const.py``).

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


class UnlearnCanvasJudge:
    """Their ViT-Large style and object classifiers (timm), on 224 x 224 resized images."""

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
            net = timm.create_model("vit_large_patch16_224", pretrained=False, num_classes=len(self.names[domain]))
            sd = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(sd.get("model_state_dict", sd) if isinstance(sd, dict) else sd)
            self.nets[domain] = net.eval()

    def classify(self, images) -> dict:
        x = self.torch.as_tensor(np.asarray(images, np.float32) / 255.0).permute(0, 3, 1, 2)
        x = self.torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
        with self.torch.no_grad():
            return {d: [self.names[d][int(i)] for i in net(x).argmax(1)] for d, net in self.nets.items()}


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
        name=f"unlearncanvas/{domain}/{name}", modality="diffusion", protocol="diffusion", version=1,
        source={"kind": "protocol", "paper": "UnlearnCanvas (Zhang et al. 2024)", "label_space": "style50 + 20 objects"},
        splits={"forget": f"prompts with {domain} {name}", "retain": "every other style x object prompt"},
        settings={"kind": "concept", "domain": domain, "other_domain": "object" if domain == "style" else "style",
                  "concept": name, "concept_text": text, "anchor_text": "",
                  "retain_concepts": [f"{n.replace('_', ' ')} style" if domain == "style" else n for n in others],
                  "prompts": "unlearnbench.tasks.unlearncanvas:prompts", "judge": "unlearnbench.tasks.unlearncanvas:judge",
                  "steps": 100, "guidance": 9.0, "size": 512, "attack_judge": domain},
        metrics=("ua", "ira", "cra", "fid"), rank_by="ua",
        description=f"UnlearnCanvas: erase the {domain} {name} (SD v1.5 fine-tuned on UnlearnCanvas)",
    )


TASKS.register_pattern("unlearncanvas/style/<Name>", r"unlearncanvas/(?P<domain>style)/(?P<name>[A-Za-z_]+)", make_task,
                       modality="diffusion", description="UnlearnCanvas style unlearning (51 styles)")
TASKS.register_pattern("unlearncanvas/object/<Name>", r"unlearncanvas/(?P<domain>object)/(?P<name>[A-Za-z_]+)", make_task,
                       modality="diffusion", description="UnlearnCanvas object unlearning (20 objects)")
