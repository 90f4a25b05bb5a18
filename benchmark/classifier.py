"""Image classifiers: registered architectures and the ``Classifier`` model adapter.

A classifier checkpoint is a folder holding ``model.safetensors`` and ``classifier.json``
(``{"format": "unlearnbench/classifier/v1", "architecture": NAME, "kwargs": {...}, "meta": {...}}``)
naming an entry of ``ARCHITECTURES`` and every constructor argument, so that
``save`` / ``load_classifier`` round-trip exactly (as diffusers' ``save_pretrained``). A bare
``.safetensors`` file is accepted when a ``classifier.json`` (or ``<stem>.json``) sits beside
it. Pickles are never unpickled: ``.pt``/``.pth`` state dicts are read with
``torch.load(weights_only=True)``.

Architectures:

* ``cifar-resnet18`` — ResNet-18 (He et al., 2016) in the CIFAR form used by SalUn's code
  (``OPTML-Group/Unlearn-Saliency``, ``Classification/models/ResNet.py``): a 3x3 stride-1 stem
  convolution and no max-pool, with the input normalisation inside the model (inputs are
  images in [0, 1]). ``width`` scales every stage (64 = the published network; tests use 8).
* ``digits-cnn`` — a small CNN for the 8x8 digits world (two 3x3 convolutions with 16 and 32
  channels, one max-pool, a 64-unit hidden layer; 38 k parameters with the defaults).

Threads follow the suite's one policy (:mod:`unlearnbench.threads`): measured on a loaded
2-core CPU, one SGD step of the digits CNN takes 0.037 s on one thread and 0.31 s on two
(thread contention dominates such tiny kernels), so tiny models run single-threaded.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench import distributed
from unlearnbench.errors import UserError
from unlearnbench.registry import ARCHITECTURES
from unlearnbench.threads import thread_policy

FORMAT = "unlearnbench/classifier/v1"
CONFIG_NAME = "classifier.json"
WEIGHTS_NAME = "model.safetensors"


# -- architectures ----------------------------------------------------------------------
class _Normalize(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@ARCHITECTURES.register("cifar-resnet18", modality="classifier",
                        description="ResNet-18, CIFAR stem (3x3 conv, no max-pool), as in SalUn's code")
class CifarResNet18(nn.Module):
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool (SalUn / Kuang Liu CIFAR form)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64,
                 mean: Sequence[float] = (0.4914, 0.4822, 0.4465), std: Sequence[float] = (0.2470, 0.2435, 0.2616)):
        super().__init__()
        self.normalize = _Normalize(mean, std)
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            layers.append(nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


@ARCHITECTURES.register("digits-cnn", modality="classifier", description="small CNN for 8x8 digits (38 k params)")
class DigitsCNN(nn.Module):
    """conv3x3(c1) - ReLU - conv3x3(c2) - ReLU - maxpool2 - fc(hidden) - ReLU - fc(classes)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 8,
                 channels: Sequence[int] = (16, 32), hidden: int = 64):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * (image_size // 2) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def build_architecture(name: str, kwargs: dict | None = None) -> nn.Module:
    cls = ARCHITECTURES.get(name)
    try:
        return cls(**(kwargs or {}))
    except TypeError as e:
        raise UserError(f"architecture {name!r}: bad arguments {kwargs} ({e})") from None


# -- adapter ----------------------------------------------------------------------------
class Classifier:
    """Model adapter for the classifier track: ``predict(x) -> logits``, ``save(dir)``, ``describe()``.

    ``module`` is a plain ``nn.Module`` that methods train in place (on a :meth:`clone`).
    ``meta`` travels with the checkpoint (``unlearn_seconds``: wall-clock of the run that
    produced these weights, used for the RTE metric; method name, ...).
    """

    def __init__(self, module: nn.Module, architecture: str, kwargs: dict | None = None, *, source: str = "memory",
                 meta: dict | None = None, device: str = "cpu", batch_size: int = 512):
        self.module = module.to(device)
        self.architecture = architecture
        self.kwargs = dict(kwargs or {})
        self.source = source
        self.meta = dict(meta or {})
        self.device_name = str(device)
        self.dtype_name = str(next(module.parameters()).dtype).replace("torch.", "")
        self.batch_size = int(batch_size)

    @classmethod
    def new(cls, architecture: str, kwargs: dict | None = None, **opts: Any) -> "Classifier":
        return cls(build_architecture(architecture, kwargs), architecture, kwargs, **opts)

    @torch.no_grad()
    def predict(self, x: torch.Tensor | np.ndarray, batch_size: int | None = None) -> torch.Tensor:
        """Logits (float32, CPU) for a batch of images ``(N, C, H, W)`` in [0, 1]; eval mode.

        Under ``accelerate launch`` the batches are shared out over the processes and gathered
        back in order (:mod:`unlearnbench.distributed`): each batch is the one a single process
        runs, so the logits are the same."""
        x = torch.as_tensor(x, dtype=torch.float32)
        was_training = self.module.training
        self.module.eval()
        bs = batch_size or self.batch_size
        starts = list(range(0, len(x), bs))  # the batches; under accelerate launch shared out over the ranks
        with thread_policy(self.module):
            out = distributed.map_sharded(
                lambda part: [self.module(x[i:i + bs].to(self.device_name)).float().cpu() for i in part], starts)
        self.module.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, 0)

    def clone(self) -> "Classifier":
        return Classifier(copy.deepcopy(self.module), self.architecture, self.kwargs, source=self.source,
                          meta=dict(self.meta), device=self.device_name, batch_size=self.batch_size)

    def state_bytes_sha256(self) -> str:
        from safetensors.torch import save as st_save

        from unlearnbench.results import sha256_bytes

        return sha256_bytes(st_save(_state(self.module)))

    def save(self, out_dir: str | Path) -> Path:
        from safetensors.torch import save_file

        from unlearnbench.results import atomic_write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{WEIGHTS_NAME}.tmp"
        save_file(_state(self.module), str(tmp))
        tmp.replace(out / WEIGHTS_NAME)
        atomic_write_json(out / CONFIG_NAME, {"format": FORMAT, "architecture": self.architecture,
                                              "kwargs": self.kwargs, "meta": self.meta})
        return out

    def describe(self) -> dict:
        n = sum(p.numel() for p in self.module.parameters())
        return {"name": self.meta.get("name") or Path(str(self.source)).name or self.architecture,
                "source": str(self.source), "architecture": self.architecture, "kwargs": self.kwargs,
                "parameters": n, "weights_sha256": self.state_bytes_sha256(),
                "unlearn_seconds": self.meta.get("unlearn_seconds")}


def _state(module: nn.Module) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def _find_config(path: Path) -> tuple[Path, Path]:
    """(config json, weights file) for a folder or a weights file."""
    if path.is_dir():
        cfg = path / CONFIG_NAME
        weights = [path / WEIGHTS_NAME] + sorted(path.glob("*.safetensors")) + sorted(path.glob("*.pt")) + sorted(path.glob("*.pth"))
        found = next((w for w in weights if w.is_file()), None)
        if found is None:
            raise UserError(f"no model.safetensors (or .pt) in classifier folder {path}")
        if not cfg.is_file():
            raise UserError(f"classifier folder {path} has no {CONFIG_NAME} naming its architecture")
        return cfg, found
    for cfg in (path.with_suffix(".json"), path.parent / CONFIG_NAME):
        if cfg.is_file():
            return cfg, path
    raise UserError(f"no {path.with_suffix('.json').name} or {CONFIG_NAME} beside {path} naming its architecture")


def _read_weights(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"cannot read safetensors file {path}: {e}") from None
    if path.suffix in (".pt", ".pth"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)  # never unpickle code
        except Exception as e:  # noqa: BLE001 - any failure here is a bad user file
            raise UserError(f"cannot read {path} as a weights-only state dict: {type(e).__name__}") from None
        obj = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise UserError(f"{path} does not hold a state dict of tensors")
        return obj
    raise UserError(f"unsupported classifier weights file {path} (use .safetensors)")


def load_classifier(checkpoint: str | Path, task: Any = None, *, device: str | None = None,
                    batch_size: int | None = None, dtype: str | None = None, **_ignored: Any) -> Classifier:
    """``MODEL_LOADERS['classifier']``: load a checkpoint folder / safetensors file."""
    path = Path(checkpoint)
    if not path.exists():
        raise UserError(f"classifier checkpoint not found: {path}")
    if dtype not in (None, "float32"):
        raise UserError(f"classifier checkpoints are scored in float32, not {dtype}")
    cfg_path, weights = _find_config(path)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{cfg_path} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("architecture"), str):
        raise UserError(f"{cfg_path} must be a JSON object with an 'architecture' name")
    for key in ("kwargs", "meta"):
        if not isinstance(cfg.get(key) or {}, dict):
            raise UserError(f"{cfg_path}: {key!r} must be a JSON object, not {type(cfg[key]).__name__}")
    module = build_architecture(cfg["architecture"], cfg.get("kwargs") or {})
    state = _read_weights(weights)
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise UserError(f"{weights} does not fit architecture {cfg['architecture']!r}: {str(e).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise UserError(f"{weights} does not fit architecture {cfg['architecture']!r}: "
                        f"{len(missing)} missing, {len(unexpected)} unexpected tensors (e.g. {(list(missing) or list(unexpected))[0]})")
    module.eval()
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    auto = batch_size == "auto"  # a classifier's default batch (unlearnbench.auto_batch searches for causal LMs)
    clf = Classifier(module, cfg["architecture"], cfg.get("kwargs") or {}, source=str(path),
                     meta=cfg.get("meta") or {}, device=dev, batch_size=512 if auto else batch_size or 512)
    clf.batch_size_source = "auto (default)" if auto else None
    return clf
