"""``ImageGenerator``: the text-to-image model adapter (MODEL_LOADERS ``diffusion``).

Checkpoint syntax (one string, so the CLI needs nothing else)::

    PIPELINE                               a diffusers pipeline folder or hub id
    PIPELINE+unet=PATH                     ... with its UNet swapped (ESD, SalUn, UCE checkpoints)
    PIPELINE+text_encoder=PATH             ... with its text encoder swapped (AdvUnlearn)
    PIPELINE+unet=PATH+text_encoder=PATH   both

``PATH`` is a diffusers component folder (``config.json`` + weights), a ``.safetensors``
state dict in diffusers key layout, or a ``.pt/.bin/.ckpt`` file read with
``torch.load(weights_only=True)`` (never pickled code). Original-SD (CompVis) key layouts
are refused with a one-line hint: convert them with diffusers' conversion script first.

``sample`` is deterministic per seed: the initial latent of each image is drawn on the CPU
from ``torch.Generator().manual_seed(seed)`` alone, so an image does not depend on the
other prompts of its batch, and the scheduler runs without noise (DDIM eta=0 or PNDM/LMS).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from unlearnbench.errors import UserError

COMPONENTS = ("unet", "text_encoder")


def parse_checkpoint(checkpoint: str) -> tuple[str, dict[str, str]]:
    """Split ``BASE+unet=PATH+text_encoder=PATH`` into ``(BASE, {component: PATH})``."""
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise UserError("diffusion checkpoint must be a non-empty string")
    base, *parts = checkpoint.split("+")
    swaps: dict[str, str] = {}
    for part in parts:
        key, sep, path = part.partition("=")
        if not sep or not path:
            raise UserError(f"bad component swap {part!r} in {checkpoint!r}: expected +unet=PATH or +text_encoder=PATH")
        if key not in COMPONENTS:
            raise UserError(f"cannot swap component {key!r}; swappable: {', '.join(COMPONENTS)}")
        if key in swaps:
            raise UserError(f"component {key!r} swapped twice in {checkpoint!r}")
        swaps[key] = path
    return base.strip(), swaps


#: what diffusers / safetensors / torch raise on a broken or foreign checkpoint file
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def check_model_index(folder: str | Path) -> dict:
    """A local pipeline folder's ``model_index.json``, checked without loading any weights.

    It must be a JSON object, and every component the declared pipeline class takes (its
    ``__init__`` arguments without a default: ``vae``, ``unet``, ... and, for Stable Diffusion,
    ``safety_checker`` and ``feature_extractor``) must have a field; diffusers'
    ``save_pretrained`` writes them all (``[null, null]`` for an absent one). A hand-edited
    index that drops ``safety_checker`` would otherwise load with diffusers' safety warning
    and a silently different pipeline, so it is refused with the fix.
    """
    import inspect

    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise UserError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    try:
        doc = json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{index} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise UserError(f"{index} must be a JSON object, not a {type(doc).__name__}")
    name = doc.get("_class_name")
    import diffusers

    cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    if cls is None:
        raise UserError(f"{index}: _class_name {name!r} is not a diffusers pipeline class")
    params = inspect.signature(cls.__init__).parameters.values()
    needed = [q.name for q in params if q.name != "self" and q.default is inspect.Parameter.empty
              and q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]
    missing = [n for n in needed if n not in doc]
    if missing:
        raise UserError(f"{index} has no {', '.join(repr(m) for m in missing)} field for {name} "
                        f"(write \"{missing[0]}\": [null, null] if the pipeline has none)")
    return doc


def _load_pipeline(base: str, device: str, dtype):
    from diffusers import DiffusionPipeline

    from unlearnbench.hub import require_local_or_hub
    from unlearnbench.progress import silence_libraries

    silence_libraries()  # diffusers' "Loading pipeline components" bar, under --quiet
    p = Path(base)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if p.exists():
        doc = check_model_index(p)
        if "safety_checker" in doc:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
    else:
        require_local_or_hub(base, "diffusion pipeline")
    try:
        pipe = DiffusionPipeline.from_pretrained(base, **kwargs)
    except _LOAD_ERRORS as e:
        raise UserError(f"cannot load diffusion pipeline {base}: {_first_line(e)}") from None
    for needed in ("unet", "text_encoder", "tokenizer", "scheduler"):
        if getattr(pipe, needed, None) is None:
            raise UserError(f"pipeline {base} has no {needed}; only text-to-image latent pipelines are supported")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _read_state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - SafetensorError / OSError: a broken file either way
            raise UserError(f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}") from None
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # pickles with code are refused by weights_only
            raise UserError(f"cannot read {path} as plain weights (weights_only=True): {_first_line(e)}") from None
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise UserError(f"{path} does not hold a state dict of tensors")
        return sd
    raise UserError(f"unsupported weights file {path.name}: use .safetensors, .pt/.bin/.ckpt or a component folder")


def _swap(pipe, component: str, path_str: str) -> None:
    path = Path(path_str)
    if not path.exists():
        raise UserError(f"{component} weights not found: {path}")
    module = getattr(pipe, component)
    if path.is_dir():
        cls = type(module)
        try:
            new = cls.from_pretrained(str(path), dtype=module.dtype)
        except _LOAD_ERRORS as e:
            raise UserError(f"cannot load {component} from {path}: {_first_line(e)}") from None
        setattr(pipe, component, new.to(module.device))
        pipe.register_modules(**{component: getattr(pipe, component)})
        return
    sd = _read_state_dict(path)
    if any(k.startswith(("model.diffusion_model.", "cond_stage_model.")) for k in sd):
        raise UserError(f"{path} uses the original (CompVis) key layout; convert it to diffusers format first "
                        "(diffusers/scripts/convert_original_stable_diffusion_to_diffusers.py)")
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise UserError(f"{path} does not match the base {component}: {len(missing)} missing keys (e.g. "
                        f"{missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]})")
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        raise UserError(f"{path}: shape mismatch for {component} weight {bad[0]}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})


class ImageGenerator:
    """A text-to-image latent diffusion pipeline behind a narrow, deterministic interface."""

    def __init__(self, pipe, source: str, swaps: dict | None = None, device: str = "cpu", dtype_name: str = "float32",
                 batch_size: int = 16):
        self.pipe = pipe
        self.source = source
        self.swaps = dict(swaps or {})
        self.device_name = device
        self.dtype_name = dtype_name
        self.batch_size = batch_size
        self._sha = None

    # -- components used by methods and attacks ---------------------------------------
    @property
    def unet(self):
        return self.pipe.unet

    @property
    def text_encoder(self):
        return self.pipe.text_encoder

    @property
    def tokenizer(self):
        return self.pipe.tokenizer

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def scheduler(self):
        return self.pipe.scheduler

    def clone(self) -> "ImageGenerator":
        """A deep copy whose weights can be trained without touching this one."""
        new = ImageGenerator(copy.deepcopy(self.pipe), self.source, self.swaps, self.device_name, self.dtype_name,
                             self.batch_size)
        return new

    def mark_modified(self, note: str) -> None:
        """Record that weights changed in memory (the hash is recomputed on describe)."""
        self.swaps = {**self.swaps, "modified": note}
        self._sha = None

    # -- sampling ---------------------------------------------------------------------
    def initial_latents(self, seeds: Sequence[int], size: tuple[int, int]):
        import torch

        h, w = size
        f = 2 ** (len(self.vae.config.block_out_channels) - 1) if self.vae is not None else 8
        shape = (self.unet.config.in_channels, h // f, w // f)
        lat = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds]
        return torch.stack(lat)

    def default_size(self) -> tuple[int, int]:
        f = 2 ** (len(self.vae.config.block_out_channels) - 1)
        s = int(self.unet.config.sample_size) * f
        return s, s

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], guidance: float | Sequence[float] = 7.5,
               steps: int = 50, size: tuple[int, int] | None = None, negative_prompt: str | None = None,
               prompt_embeds=None, progress: bool = False) -> np.ndarray:
        """Images for ``prompts`` as uint8 ``[N, H, W, 3]``; image i depends only on (prompt i, seed i, guidance i).

        ``guidance`` may be one value or one per prompt (I2P rows carry their own);
        ``prompt_embeds`` (``[N, L, D]`` text-encoder outputs) replaces ``prompts`` for attacks.
        Under ``accelerate launch`` the batches are shared out over the processes and gathered in
        order (:mod:`unlearnbench.distributed`).
        """
        n = len(prompts) if prompt_embeds is None else int(prompt_embeds.shape[0])
        if len(seeds) != n:
            raise UserError(f"sample: {n} prompts but {len(seeds)} seeds")
        g = [float(guidance)] * n if np.isscalar(guidance) else [float(x) for x in guidance]
        if len(g) != n:
            raise UserError(f"sample: {n} prompts but {len(g)} guidance values")
        h, w = size or self.default_size()
        out = np.zeros((n, h, w, 3), dtype=np.uint8)
        order = sorted(range(n), key=lambda i: g[i])  # one pipeline call per guidance value and batch
        from tqdm.auto import tqdm

        groups, i = [], 0
        while i < n:
            j = i
            while j < n and j - i < self.batch_size and g[order[j]] == g[order[i]]:
                j += 1
            groups.append(order[i:j])
            i = j
        from unlearnbench import distributed

        bar = tqdm(total=n, desc="sampling", unit="img", disable=not progress or not distributed.is_main(), leave=False)
        # under accelerate launch the batches are shared out over the processes, gathered in order
        done = distributed.map_sharded(
            lambda part: [self._sample_batch(idx, prompts, seeds, g, steps, h, w, negative_prompt, prompt_embeds, bar)
                          for idx in part], groups)
        for idx, imgs in zip(groups, done):
            out[idx] = imgs
        bar.close()
        return out

    def _sample_batch(self, idx, prompts, seeds, g, steps, h, w, negative_prompt, prompt_embeds, bar) -> np.ndarray:
        """One pipeline call: the images of the prompts ``idx`` (one guidance value) as uint8."""
        import torch

        lat = self.initial_latents([seeds[k] for k in idx], (h, w)).to(self.unet.device, self.unet.dtype)
        kw: dict[str, Any] = dict(num_inference_steps=int(steps), guidance_scale=g[idx[0]], height=h, width=w,
                                  latents=lat, output_type="np")
        if prompt_embeds is not None:
            kw["prompt_embeds"] = prompt_embeds[idx].to(self.unet.device)
            if g[idx[0]] > 1:
                kw["negative_prompt_embeds"] = self._encode([negative_prompt or ""] * len(idx))
        else:
            kw["prompt"] = [prompts[k] for k in idx]
            if negative_prompt:
                kw["negative_prompt"] = [negative_prompt] * len(idx)
        with torch.no_grad():
            imgs = self.pipe(**kw).images
        bar.update(len(idx))
        return np.clip(np.round(np.asarray(imgs) * 255), 0, 255).astype(np.uint8)

    def _encode(self, prompts: Sequence[str]):
        import torch

        tok = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        with torch.no_grad():
            return self.text_encoder(tok.input_ids.to(self.text_encoder.device))[0]

    # -- provenance -------------------------------------------------------------------
    def weights_sha256(self) -> str:
        """sha256 over the UNet's and text encoder's tensors (names + bytes), in memory."""
        if self._sha is None:
            h = hashlib.sha256()
            for comp in ("unet", "text_encoder"):
                for k, v in sorted(getattr(self.pipe, comp).state_dict().items()):
                    h.update(f"{comp}.{k}".encode())
                    h.update(v.detach().cpu().contiguous().view(-1).numpy().view(np.uint8).tobytes())
            self._sha = h.hexdigest()
        return self._sha

    def describe(self) -> dict:
        name = Path(self.source.rstrip("/")).name or self.source
        return {"name": name, "source": self.source, "swaps": dict(self.swaps), "kind": "diffusion",
                "pipeline_class": type(self.pipe).__name__, "weights_sha256": self.weights_sha256(),
                "device": self.device_name, "dtype": self.dtype_name}

    def save(self, out_dir) -> Path:
        """Write the whole pipeline (safetensors) with ``save_pretrained``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.pipe.save_pretrained(str(out), safe_serialization=True)
        return out


def load_image_generator(checkpoint: str, task=None, device: str | None = None, dtype: str | None = None,
                         batch_size: int | None = None, **_: Any) -> ImageGenerator:
    """MODEL_LOADERS['diffusion']: a pipeline folder / hub id with optional component swaps."""
    import torch

    base, swaps = parse_checkpoint(checkpoint)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = "float32" if device == "cpu" else "float16"
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    if torch_dtype is None:
        raise UserError(f"unknown dtype {dtype!r}")
    pipe = _load_pipeline(base, device, torch_dtype)
    for comp, path in swaps.items():
        _swap(pipe, comp, path)
    auto = batch_size == "auto"  # the pipeline's default batch (unlearnbench.auto_batch searches for causal LMs)
    gen = ImageGenerator(pipe, base, swaps, device, dtype, 16 if auto else batch_size or 16)
    gen.batch_size_source = "auto (default)" if auto else None
    return gen
