"""A tiny registered task/protocol/world/method for leaderboard and table tests (no model, no data).

Imported by ``test_leaderboard_*.py`` and ``test_table_*.py``; registration is idempotent.
The protocol's aggregate is pure and trivial (means of a per-sample ``value``), so a changed
number or row is always detectable; the 'model' is a number (a shift added to every sample).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from unlearnbench.metric import mean_stderr, metric_value
from unlearnbench.protocol import Protocol, World
from unlearnbench.reference import write_reference
from unlearnbench.registry import PROTOCOLS, TASKS, WORLDS
from unlearnbench.spec import TaskSpec
from unlearnbench.unlearning import register_method

TASK = "test-dummy/leaderboard"
PROTO = "test-dummy-leaderboard"
WORLD = "test-dummy-leaderboard-world"
METHOD = "test-dummy-shift"
CALLS = {"unlearn": 0, "infer": 0}


class DummyModel:
    device_name, dtype_name = "cpu", "float32"

    def __init__(self, shift: float, name: str = "dummy"):
        self.shift, self.name = float(shift), name

    def describe(self) -> dict:
        return {"name": self.name, "source": "test", "weights_sha256": hashlib.sha256(repr(self.shift).encode()).hexdigest()}

    def save(self, out) -> Path:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "shift.json").write_text(json.dumps(self.shift))
        return Path(out)


class DummyProtocol(Protocol):
    modality = "classifier"

    def infer(self, task, model, *, progress=True):
        CALLS["infer"] += 1
        rng = np.random.default_rng(np.random.randint(0, 2**31))  # seeded by seed_everything(seed)
        rows = [{"split": "forget", "index": i, "value": model.shift + float(rng.normal(0, 0.1))} for i in range(6)]
        rows += [{"split": "retain", "index": i, "value": 2.0 - abs(model.shift) + float(rng.normal(0, 0.1))}
                 for i in range(4)]
        return rows

    def aggregate(self, task, rows, reference):
        f = [r["value"] for r in rows if r["split"] == "forget"]
        u = [r["value"] for r in rows if r["split"] == "retain"]
        out = {"dummy_forget": metric_value(*_ms(f, higher=False)),
               "dummy_utility": metric_value(*_ms(u, higher=True))}
        if reference is not None:
            ref = float(np.mean(reference["forget_values"]))
            out["dummy_gap"] = metric_value(abs(float(np.mean(f)) - ref), False, len(f))
        return out

    def reference_payload(self, task, rows):
        forget = [r["value"] for r in rows if r["split"] == "forget"]
        return {"forget_values": forget, "metrics": {"dummy_forget": float(np.mean(forget))}}

    def training_data(self, task):
        return {"forget": [0, 1, 2], "forget_id": "dummy-forget"}

    def data_hash(self, task):
        """Depends on the task's source and the world scale, as a world's data does."""
        from unlearnbench.cache import scale

        return hashlib.sha256(json.dumps([dict(task.source), scale()], sort_keys=True).encode()).hexdigest()


WIDE_TASK = "test-dummy/wide"
WIDE_PROTO = "test-dummy-wide"
#: a MUSE-like set of ten real metric names (judged as metric_judgements.yaml declares them)
WIDE_METRICS = ("forget/verbmem", "forget/knowmem", "retain/knowmem", "privleak", "privleak_gap", "mia_loss",
                "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference")


class WideProtocol(DummyProtocol):
    """Ten headline numbers in their metrics' ranges, derived from the dummy rows (a wide table)."""

    def aggregate(self, task, rows, reference):
        f = float(np.mean([r["value"] for r in rows if r["split"] == "forget"]))
        u = float(np.mean([r["value"] for r in rows if r["split"] == "retain"]))
        sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
        vals = {"forget/verbmem": (sig(f), False), "forget/knowmem": (sig(f - 0.3), False),
                "retain/knowmem": (sig(u - 1.5), True), "privleak": ((sig(f) - 0.5) * 200, False),
                "privleak_gap": (abs(sig(f) - 0.5) * 200, False), "mia_reference": (sig(f / 2), False)}
        for k, name in enumerate(("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus")):
            vals[name] = (sig(f + 0.1 * k), False)
        return {m: metric_value(float(v), hib, len(rows)) for m, (v, hib) in vals.items()}


def _ms(values, higher):
    m, se = mean_stderr(values)
    return m, higher, len(values), se


class DummyWorld(World):
    def checkpoint(self, task, role):
        return f"dummy://{role}"

    def reference(self, task):
        from unlearnbench.cache import cache_dir

        path = cache_dir("test-dummy-leaderboard", f"{task.name.replace('/', '-')}_retain_reference.json")
        if not path.exists():
            rows = DummyProtocol().infer(task, DummyModel(0.0, "retain"))
            write_reference(path, task, DummyModel(0.0, "retain").describe(),
                            DummyProtocol().reference_payload(task, rows))
        return path


class DummyShift:
    """'Unlearning' that lowers the shift by ``lr``."""

    name, modality = METHOD, "classifier"

    @dataclasses.dataclass
    class Config:
        lr: float = 0.5  # made up for the test

    def unlearn(self, model, task, config, *, data, progress):
        CALLS["unlearn"] += 1
        return DummyModel(model.shift - config.lr, f"dummy-unlearned-{config.lr}")


def fake_load_model(task, checkpoint, **opts):
    """World roles, or a folder a DummyModel was saved to (a table's chained cell)."""
    shifts = {"world:target": 1.0, "world:retain": 0.0, "world:retain2": 0.05}
    saved = Path(checkpoint) / "shift.json"
    if checkpoint not in shifts and saved.is_file():
        return DummyModel(json.loads(saved.read_text()), f"saved-{Path(checkpoint).parent.name[:8]}")
    if checkpoint not in shifts:
        from unlearnbench.errors import UserError

        raise UserError(f"dummy checkpoint {checkpoint!r}")
    return DummyModel(shifts[checkpoint], checkpoint.split(":")[1])


def register() -> TaskSpec:
    from unlearnbench.catalog import load_all
    from unlearnbench.metric import declare_metric

    load_all()
    # how the dummy metrics are judged: a gap metric (the reference model's mean forget value is
    # in the reference payload), a bounded utility and a plain distance
    declare_metric("dummy_gap", better="lower", range=(0, None))
    declare_metric("dummy_forget", better="reference", range=(-5, 5))
    declare_metric("dummy_utility", better="higher", range=(-1, 3))
    if PROTO not in PROTOCOLS:
        PROTOCOLS.register(PROTO, DummyProtocol)
        WORLDS.register(WORLD, DummyWorld())
        register_method(METHOD, "classifier", DummyShift, description="test")
        register_method(METHOD, "llm", type("DummyShiftLLM", (DummyShift,), {"modality": "llm"}), description="test")
        TASKS.register(TASK, TaskSpec(
            name=TASK, modality="classifier", protocol=PROTO, version=3, source={"kind": "world", "n": 10},
            metrics=("dummy_gap", "dummy_forget", "dummy_utility"), references=("retain",), rank_by="dummy_gap",
            world=WORLD, description="leaderboard test task"), modality="classifier")
        PROTOCOLS.register(WIDE_PROTO, WideProtocol)
        TASKS.register(WIDE_TASK, TaskSpec(
            name=WIDE_TASK, modality="llm", protocol=WIDE_PROTO, version=1, metrics=WIDE_METRICS,
            references=("retain",), rank_by="privleak_gap", world=WORLD,
            description="leaderboard test task with ten metrics"), modality="llm")
        TASKS.register(TASK + "-other", TASKS.get(TASK).replace(
            name=TASK + "-other", source={"kind": "world", "n": 12}, description="the dummy task on other data"),
            modality="classifier")
    return TASKS.get(TASK)


def make_submission(folder: Path, label: str, seed: int, shift: float, *, method: dict | None = None,
                    reference: bool = True, checkpoint: str = "dummy", task: str = TASK) -> Path:
    """Score a DummyModel into ``folder`` (reference copied inside, recorded relative): a result file path.

    ``checkpoint="world:target"`` (or another world role) records the model as that world model."""
    from unlearnbench.results import atomic_write_json, read_json
    from unlearnbench.runner import get_task, score

    register()
    folder.mkdir(parents=True, exist_ok=True)
    ref = None
    if reference:
        ref = folder / "reference.json"
        if not ref.exists():
            ref.write_bytes(Path(DummyWorld().reference(get_task(task))).read_bytes())
    scored = score(task, checkpoint, model=DummyModel(shift, f"model-{label}"), reference=ref,
                   out_dir=folder, seed=seed, label=label, method=method, progress=False)
    doc = read_json(scored.path)
    doc["references"] = [dict(r, path=Path(r["path"]).name) for r in doc["references"]]
    atomic_write_json(scored.path, doc)
    return scored.path
