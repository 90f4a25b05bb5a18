"""Real CIFAR-10 / CIFAR-100 classification-unlearning tasks (SalUn's settings).

Data: the Hugging Face datasets ``uoft-cs/cifar10`` (columns ``img``, ``label``) and
``uoft-cs/cifar100`` (``img``, ``fine_label``), splits ``train`` (50,000) and ``test``
(10,000), loaded with ``datasets`` when online. Offline, set ``UNLEARNBENCH_CIFAR10_PATH`` /
``UNLEARNBENCH_CIFAR100_PATH`` to a local copy in the same schema: a folder written by
``DatasetDict.save_to_disk`` or a folder with ``train*.parquet`` and ``test*.parquet``.

Tasks per data set (``cifar10`` shown): ``cifar10/random-10``, ``cifar10/random-50``
(random 10 % / 50 % of the training set, SalUn's random forgetting), ``cifar10/worst-10``
(Unlearn-WorstCase 10 %), ``cifar10/class-<k>`` (class-wise forgetting). The worst-case set is
selected by ``worst_case.py`` with the reference code's defaults (``worst_case.DEFAULTS``: 10
upper iterations of 10 sign-SGD epochs each, ``w_lr`` 0.01) on an original model trained from
scratch with the recipe below (a ResNet-18 for 182 epochs: GPU hours), then cached; its
``w_lr`` has not been calibrated on CIFAR here (see ``tasks/digits.py`` for why it matters).
Methods run with their published CIFAR-10 defaults (each ``baselines/*.py`` Config).

Model: ``cifar-resnet18`` (SalUn's ResNet-18). These tasks have no embedded world: bring the
original model (``unlearnbench score cifar10/random-10 CKPT``) and build the Retrain
reference with ``unlearnbench reference build cifar10/random-10 RETRAIN_CKPT -o ref.json``
(or train Retrain with the ``retrain`` method, which uses ``settings['train']``).
The recipe follows SalUn's pre-training (SGD, lr 0.1, momentum 0.9, weight decay 5e-4,
batch 256, 182 epochs) with a cosine schedule instead of the step decay at epochs 91/136.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.registry import TASKS
from unlearnbench.spec import TaskSpec
from unlearnbench.tasks import classifier_protocol as cp

_DATASETS = {
    "cifar10": {"hub": "uoft-cs/cifar10", "label": "label", "classes": 10, "env": "UNLEARNBENCH_CIFAR10_PATH"},
    "cifar100": {"hub": "uoft-cs/cifar100", "label": "fine_label", "classes": 100, "env": "UNLEARNBENCH_CIFAR100_PATH"},
}
METRICS = ("ua", "ra", "ta", "mia_efficacy", "avg_gap", "rte")
_RECIPE = {"epochs": 182, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256,
           "schedule": "cosine", "seed": 0}


def _load_splits(source: dict):
    import datasets

    local = os.environ.get(source["env"]) or source.get("local_path")
    if local:
        p = Path(local)
        if not p.is_dir():
            raise UserError(f"${source['env']} is not a folder: {p}")
        if (p / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(str(p))
        elif (p / "README.md").is_file():  # the hub layout (a clone of the dataset repository)
            try:
                ds = datasets.load_dataset(str(p))
            except Exception as e:  # noqa: BLE001 - a malformed copy is the user's to fix
                raise UserError(f"cannot read {p} as a dataset: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
        else:
            files = {s: sorted(str(f) for f in p.glob(f"{s}*.parquet")) for s in ("train", "test")}
            if not all(files.values()):
                raise UserError(f"{p} holds neither a save_to_disk DatasetDict, a hub-layout copy (README.md) "
                                "nor train*/test*.parquet files")
            ds = datasets.load_dataset("parquet", data_files=files)
    else:
        try:
            ds = datasets.load_dataset(source["path"])
        except Exception as e:  # noqa: BLE001 - offline / hub errors are user-facing
            raise UserError(f"cannot load {source['path']} ({type(e).__name__}); set ${source['env']} "
                            f"to a local copy (save_to_disk folder or parquet files)") from None
    for split in ("train", "test"):
        if split not in ds:
            raise UserError(f"{source['path']}: the data has no {split!r} split")
    return ds["train"], ds["test"]


def _to_arrays(ds, image_col: str, label_col: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in (image_col, label_col) if c not in ds.column_names]
    if missing:
        raise UserError(f"{what}: missing column(s) {', '.join(missing)} (have {', '.join(ds.column_names)})")
    imgs = [np.asarray(im.convert("RGB"), dtype=np.uint8) for im in ds[image_col]]
    shapes = {im.shape for im in imgs}
    if len(shapes) != 1:
        raise UserError(f"{what}: images have different sizes {sorted(shapes)[:3]}")
    x = np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return np.ascontiguousarray(x), np.asarray(ds[label_col], dtype=np.int64)


def load_data(source: dict) -> cp.ClassifierData:
    """``settings['data']`` loader for CIFAR-10/100 in the ``uoft-cs`` schema."""
    train, test = _load_splits(source)
    xtr, ytr = _to_arrays(train, source["image_column"], source["label_column"], f"{source['path']} train")
    xte, yte = _to_arrays(test, source["image_column"], source["label_column"], f"{source['path']} test")
    k = int(source["num_classes"])
    for y, split in ((ytr, "train"), (yte, "test")):
        if y.size and (y.min() < 0 or y.max() >= k):
            raise UserError(f"{source['path']} {split}: labels outside 0..{k - 1}")
    return cp.ClassifierData(xtr, ytr, xte, yte, k, source["path"])


def make_task(dataset: str, variant: str) -> TaskSpec:
    d = _DATASETS[dataset]
    forget = {"random-10": {"kind": "random", "fraction": 0.1, "seed": 0},
              "random-50": {"kind": "random", "fraction": 0.5, "seed": 0},
              "worst-10": {"kind": "worst", "fraction": 0.1}}.get(variant)
    if forget is None:
        forget = {"kind": "class", "class": int(variant.split("-", 1)[1])}
    return TaskSpec(
        name=f"{dataset}/{variant}", modality="classifier", protocol="classifier", version=1,
        source={"kind": "hub", "path": d["hub"], "env": d["env"], "image_column": "img", "label_column": d["label"],
                "num_classes": d["classes"]},
        splits={"forget": "train[forget]", "retain": "train[~forget]", "test": "test"},
        settings={"data": "unlearnbench.tasks.cifar:load_data", "forget": forget,
                  "architecture": {"name": "cifar-resnet18", "kwargs": {"num_classes": d["classes"]}},
                  "train": _RECIPE},
        metrics=METRICS, references=("retrain",), rank_by="avg_gap",
        description=f"{dataset}: SalUn {variant} forgetting on {d['hub']}")


for _ds in _DATASETS:
    for _v in ("random-10", "random-50", "worst-10"):
        _t = make_task(_ds, _v)
        TASKS.register(_t.name, _t, modality="classifier", description=_t.description)
    _digits = r"[0-9]" if _DATASETS[_ds]["classes"] == 10 else r"[0-9]|[1-9][0-9]"
    TASKS.register_pattern(f"{_ds}/class-<k>", rf"{_ds}/class-(?P<k>{_digits})",
                           lambda k, _d=_ds: make_task(_d, f"class-{int(k)}"), modality="classifier",
                           description=f"{_ds}: forget one whole class (SalUn class-wise forgetting)")
