"""The WMDP multiple-choice protocol on local fixtures in cais/wmdp's and cais/mmlu's schemas."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from test_muse_protocol import NAMES, TOWNS, tiny_lm  # noqa: E402  (tests/ is on sys.path under pytest)
from unlearnbench.errors import UserError


def _mcq(rng: random.Random, subject: str | None = None) -> dict:
    opts = rng.sample(TOWNS, 4)
    row = {"question": f"Where does Mayor {rng.choice(NAMES)} work ?", "choices": opts, "answer": rng.randrange(4)}
    if subject:
        row["subject"] = subject
    return row


def write_wmdp_fixture(folder: Path) -> Path:
    rng = random.Random(0)
    files = {
        "wmdp-bio/test": [_mcq(rng) for _ in range(6)],
        "all/test": [_mcq(rng, rng.choice(["college_biology", "x"])) for _ in range(5)],
        "bio-forget-corpus/train": [{"text": "In Velmora the council approved a new bridge ."}],
        "bio-retain-corpus/train": [{"text": "Residents of Quillby welcomed the news ."}] * 2,
    }
    for name, rows in files.items():
        f = folder / f"{name}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(rows))
    return folder


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from unlearnbench.registry import TASKS
    from unlearnbench.runner import get_task

    folder = write_wmdp_fixture(tmp_path_factory.mktemp("wmdp"))
    name = "test-wmdp/bio"
    if name not in TASKS:
        TASKS.register(name, get_task("wmdp/bio").replace(
            name=name, source={"kind": "local", "path": str(folder)},
            splits={"forget": "wmdp-bio/test", "utility": "all/test", "forget_train": "bio-forget-corpus/train",
                    "retain_train": "bio-retain-corpus/train"}),
            modality="llm", version=1, description="WMDP schema fixture (tests)")
    return get_task(name)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(3)


@pytest.fixture(scope="module")
def rows(task, lm):
    from unlearnbench.runner import get_protocol

    return get_protocol(task).infer(task, lm, progress=False)


def test_choice_logliks_match_next_token_logprobs(task, lm, rows):
    """Independent check: log p(letter | BOS + prompt) from one forward pass of the raw model."""
    import torch

    from unlearnbench.metrics.mcq import mcq_prompt
    from unlearnbench.tasks.wmdp import load_rows

    data = {"forget": load_rows(task, "forget"), "utility": load_rows(task, "utility")}
    letters = [lm.tokenizer.convert_tokens_to_ids(x) for x in "ABCD"]
    for r in rows:
        d = data[r["split"]][r["index"]]
        subject = "biology" if r["split"] == "forget" else d["subject"]
        ids = lm.tokenizer(mcq_prompt(d["question"], d["choices"], subject), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(ids).logits[0, -1].double(), -1)
        np.testing.assert_allclose(r["choice_logliks"], logp[letters].numpy(), rtol=1e-4, atol=1e-5)
        assert r["answer"] == d["answer"]


def test_aggregate(task, rows):
    from unlearnbench.metrics.mcq import mcq_accuracy
    from unlearnbench.runner import get_protocol

    m = get_protocol(task).aggregate(task, rows, None)
    for role, name in (("forget", "forget_accuracy"), ("utility", "utility_accuracy")):
        rs = [r for r in rows if r["split"] == role]
        assert m[name]["value"] == pytest.approx(mcq_accuracy([r["choice_logliks"] for r in rs], [r["answer"] for r in rs]))
        assert m[name]["n"] == len(rs) and m[name]["chance"] == 0.25
    assert m["forget_accuracy"]["higher_is_better"] is False and m["utility_accuracy"]["higher_is_better"] is True


def test_limit_setting(task, lm):
    from unlearnbench.runner import get_protocol

    small = task.replace(settings={**task.settings, "limit": 2})
    assert len(get_protocol(task).infer(small, lm, progress=False)) == 4


def test_training_data(task):
    from unlearnbench.runner import get_protocol

    data = get_protocol(task).training_data(task)
    assert data["forget"] == [{"question": "", "answer": "In Velmora the council approved a new bridge ."}]
    assert len(data["retain"]) == 2 and data["forget_id"]["split"] == "bio-forget-corpus/train"


def test_real_tasks_and_schema_errors(tmp_path, task):
    from unlearnbench.runner import get_task
    from unlearnbench.tasks.wmdp import load_rows

    bio, cyber = get_task("wmdp/bio"), get_task("wmdp/cyber")
    assert bio.source["path"] == "cais/wmdp" and bio.splits["forget"] == "wmdp-bio/test"
    assert cyber.splits["forget"] == "wmdp-cyber/test" and cyber.settings["subjects"]["forget"] == "cybersecurity"
    assert bio.splits["utility"] == "hub:cais/mmlu:all/test"
    (tmp_path / "wmdp-bio").mkdir()
    (tmp_path / "wmdp-bio" / "test.json").write_text(json.dumps([{"question": "q", "choices": ["a", "b", "c"], "answer": 0}]))
    bad = task.replace(source={"kind": "local", "path": str(tmp_path)})
    with pytest.raises(UserError, match="4 choices"):
        load_rows(bad, "forget", ("question", "choices", "answer"))
    with pytest.raises(UserError, match="no 'nope' split"):
        load_rows(task, "nope")
