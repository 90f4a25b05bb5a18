"""CIFAR-10/100 tasks on tiny local fixtures in the ``uoft-cs/cifar10`` / ``uoft-cs/cifar100`` schema."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from unlearnbench.catalog import load_all
from unlearnbench.errors import UserError
from unlearnbench.runner import build_reference, get_protocol, get_task, score
from unlearnbench.unlearning import unlearn


def _images(n, k, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    imgs = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
    return imgs, labels.tolist()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("cifar")
    feats10 = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
    tr, trl = _images(40, 10, 0)
    te, tel = _images(20, 10, 1)
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"img": tr, "label": trl}, features=feats10),
                               "test": datasets.Dataset.from_dict({"img": te, "label": tel}, features=feats10)})
    dd.save_to_disk(str(root / "c10"))
    feats100 = datasets.Features({"img": datasets.Image(), "fine_label": datasets.Value("int64"),
                                  "coarse_label": datasets.Value("int64")})
    (root / "c100").mkdir()
    for split, (imgs, labels) in {"train": _images(60, 100, 2), "test": _images(30, 100, 3)}.items():
        labels = [(7 * i) % 100 for i in range(len(imgs))]
        datasets.Dataset.from_dict({"img": imgs, "fine_label": labels, "coarse_label": [0] * len(imgs)},
                                   features=feats100).to_parquet(str(root / "c100" / f"{split}-00000.parquet"))
    old = {k: os.environ.get(k) for k in ("UNLEARNBENCH_CIFAR10_PATH", "UNLEARNBENCH_CIFAR100_PATH", "UNLEARNBENCH_HOME")}
    os.environ.update({"UNLEARNBENCH_CIFAR10_PATH": str(root / "c10"), "UNLEARNBENCH_CIFAR100_PATH": str(root / "c100"),
                       "UNLEARNBENCH_HOME": str(root / "home")})
    load_all()
    yield root
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _tiny_resnet(path, classes):
    from unlearnbench.classifier import Classifier

    torch.manual_seed(0)
    m = Classifier.new("cifar-resnet18", {"num_classes": classes, "width": 4})
    m.save(path)
    return m


def test_cifar10_from_save_to_disk_scores_with_reference(fixtures, tmp_path):
    from unlearnbench.tasks.classifier_protocol import split_indices, task_data

    task = get_task("cifar10/random-10")
    data = task_data(task)
    assert data.x_train.shape == (40, 3, 32, 32) and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0 and data.num_classes == 10
    assert len(split_indices(task)["forget"]) == 4
    ck = tmp_path / "ck"
    _tiny_resnet(ck, 10)
    res = score("cifar10/random-10", str(ck), progress=False).result
    assert {"ua", "ra", "ta", "mia_efficacy"} <= set(res["metrics"]) and "avg_gap" not in res["metrics"]
    info = build_reference("cifar10/random-10", str(ck), tmp_path / "ref.json", progress=False)
    again = score("cifar10/random-10", str(ck), reference=info["path"], progress=False).result
    assert again["metrics"]["avg_gap"]["value"] == 0.0
    ci = split_indices(get_task("cifar10/class-3"))
    assert (data.y_train[ci["forget"]] == 3).all() and (data.y_test[ci["test"]] != 3).all()


def test_cifar100_from_parquet_and_methods(fixtures, tmp_path):
    from unlearnbench.tasks.classifier_protocol import task_data

    data = task_data(get_task("cifar100/random-10"))
    assert data.num_classes == 100 and len(data.y_train) == 60 and data.y_train[1] == 7
    ck = tmp_path / "ck"
    _tiny_resnet(ck, 100)
    model, rec = unlearn("cifar100/random-10", "salun", model=str(ck), overrides={"epochs": 1}, seed=0, progress=False)
    assert rec["forget_set_sha256"] and model.meta["unlearn_seconds"] > 0
    res = score("cifar100/random-10", "x", model=model, progress=False).result
    assert res["metrics"]["rte"]["value"] > 0


def test_cifar_worst_case_with_a_small_proxy(fixtures):
    task = get_task("cifar10/worst-10")
    tiny = task.replace(settings={**task.settings, "architecture": {"name": "cifar-resnet18",
                                                                    "kwargs": {"num_classes": 10, "width": 4}},
                                  "train": {"epochs": 1, "lr": 0.05, "batch_size": 16},
                                  "forget": {"kind": "worst", "fraction": 0.1, "select_epochs": 2, "unlearn_steps": 1}})
    data = get_protocol(tiny).training_data(tiny)
    assert len(data["forget"]["y"]) == 4 and len(data["retain"]["y"]) == 36


def test_missing_columns_and_paths_are_user_errors(fixtures, tmp_path):
    from unlearnbench.tasks.cifar import load_data

    src = dict(get_task("cifar10/random-10").source)
    with pytest.raises(UserError, match="missing column"):
        load_data({**src, "label_column": "fine_label"})
    os.environ["UNLEARNBENCH_CIFAR10_PATH"] = str(tmp_path / "absent")
    try:
        with pytest.raises(UserError):
            load_data(src)
        (tmp_path / "empty").mkdir()
        os.environ["UNLEARNBENCH_CIFAR10_PATH"] = str(tmp_path / "empty")
        with pytest.raises(UserError):
            load_data(src)
    finally:
        os.environ["UNLEARNBENCH_CIFAR10_PATH"] = str(fixtures / "c10")
