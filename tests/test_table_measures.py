"""Table specs measure what their papers measure: sequential requests chain through the cell keys,
PrivLeak is judged by its distance to 0, reference rows are independent of the reference model,
and every shipped table has a Target row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import test_leaderboard_fixtures as fx
from unlearnbench.cli import main
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.table import load_spec, parse_spec, plan_cells

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "leaderboard").glob("table_*.yaml"))


@pytest.fixture
def dummy(monkeypatch):
    fx.register()
    import unlearnbench.runner

    monkeypatch.setattr(unlearnbench.runner, "load_model", fx.fake_load_model)
    fx.CALLS.update(unlearn=0, infer=0)
    return fx


def _write(tmp_path, doc, name="spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _chain_doc(lr=0.3):
    return {"title": "chain", "tasks": [fx.TASK, fx.TASK + "-other"], "seeds": [0], "metrics": ["dummy_forget"],
            "rows": [{"label": "Target", "model": "world:target"},
                     {"label": "Seq", "method": fx.METHOD, "config": {"lr": lr}, "base": "previous"},
                     {"label": "Fresh", "method": fx.METHOD, "config": {"lr": lr}}]}


def _cell(out: Path, job) -> dict:
    marker = json.loads((out / "cells" / f"{job.sha}.json").read_text())
    return json.loads((out / "cells" / marker["result"]).read_text())


def test_sequential_requests_chain_through_cell_keys(tmp_path, dummy):
    spec = load_spec(_write(tmp_path, _chain_doc()))
    jobs = {(j.task, j.row.label): j for j in plan_cells(spec)}
    first, second = jobs[(fx.TASK, "Seq")], jobs[(fx.TASK + "-other", "Seq")]
    fresh1, fresh2 = jobs[(fx.TASK, "Fresh")], jobs[(fx.TASK + "-other", "Fresh")]
    # request 1 starts from the target (the same cell as a plain row); request 2 from request 1's cell
    assert first.key == fresh1.key and first.keep and not second.keep
    assert second.key["model"] == f"cell:{first.sha}" and second.after.sha == first.sha
    assert fresh2.key["model"] == "world:target" and fresh2.sha != second.sha
    # the chain is in the hash: another config for request 1 changes request 2's key
    other = {(j.task, j.row.label): j for j in plan_cells(load_spec(_write(tmp_path, _chain_doc(0.2), "other.yaml")))}
    assert other[(fx.TASK + "-other", "Seq")].key["model"] == f"cell:{other[(fx.TASK, 'Seq')].sha}" != second.key["model"]

    # run request 2 alone: request 1 runs first, and request 2 unlearns the model request 1 saved
    out = tmp_path / "out"
    assert main(["table", str(tmp_path / "spec.yaml"), "-o", str(out), "--cell", second.sha[:12], "--quiet"]) == 0
    assert fx.CALLS["unlearn"] == 2
    saved = json.loads((out / "cells" / first.sha / "checkpoint" / "shift.json").read_text())
    assert saved == pytest.approx(1.0 - 0.3)
    import hashlib

    weights = lambda s: hashlib.sha256(repr(s).encode()).hexdigest()  # noqa: E731  DummyModel.describe
    assert _cell(out, first)["model"]["weights_sha256"] == weights(1.0 - 0.3)
    assert _cell(out, second)["model"]["weights_sha256"] == weights(1.0 - 0.3 - 0.3)
    # a plain row on the second task starts from the target again
    assert main(["table", str(tmp_path / "spec.yaml"), "-o", str(out), "--quiet"]) == 0
    assert _cell(out, fresh2)["model"]["weights_sha256"] == weights(1.0 - 0.3)


def test_previous_needs_a_first_model(tmp_path, dummy):
    doc = _chain_doc()
    doc["rows"][1]["base"] = {fx.TASK: "previous", fx.TASK + "-other": "previous"}
    with pytest.raises(UserError, match="needs the row on the task before it"):
        plan_cells(load_spec(_write(tmp_path, doc)))


def test_privleak_is_judged_by_its_distance_to_zero(tmp_path, dummy):
    """PrivLeak is signed (< 0: under-unlearned, > 0: over-unlearned): the bold row is the one closest to
    0, not the most negative one. Shifts 0.2, -1.0, -0.1 give PrivLeak about +10, -46, -5."""
    spec = _write(tmp_path, {"tasks": [fx.WIDE_TASK], "seeds": [0], "metrics": ["privleak", "privleak_gap"],
                             "rows": [{"label": "Target", "model": "world:target"},
                                      {"label": "Over", "method": fx.METHOD, "config": {"lr": 0.8}},
                                      {"label": "Far", "method": fx.METHOD, "config": {"lr": 2.0}},
                                      {"label": "Near", "method": fx.METHOD, "config": {"lr": 1.1}}]})
    out = tmp_path / "out"
    assert main(["table", str(spec), "-o", str(out), "--quiet"]) == 0
    lines = [ln for ln in (out / "table.md").read_text().splitlines() if ln.startswith("|")]
    assert "privleak →0" in lines[0] and "privleak_gap ↓" in lines[0]
    cells = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines[2:]}
    values = {k: float(v[0].strip("*").split()[0]) for k, v in cells.items()}
    assert values["Far"] < values["Near"] < 0 < values["Over"]
    assert all(c.startswith("**") for c in cells["Near"]) and not any(c.startswith("**") for c in cells["Far"])
    assert not any(c.startswith("**") for c in cells["Over"] + cells["Target"])


# -- the shipped specs ----------------------------------------------------------------------
def _model_rows(spec, task):
    return [(r.label, r.checkpoint(task)) for r in spec.rows if r.method is None]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_table_has_a_target_row(path):
    """The untouched model the method rows start from is itself a row (on embedded and real tasks)."""
    spec = load_spec(path)
    for task in spec.tasks + spec.real_tasks:
        starts = {"world:target" if r.base == "previous" else r.checkpoint(task)  # a chain starts at the target
                  for r in spec.rows if r.method is not None} - {"previous"}
        models = {ckpt for _, ckpt in _model_rows(spec, task)}
        assert starts and starts <= models, (path.name, task, starts - models)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_reference_rows_are_not_the_reference_model(path):
    """A world's reference artefact is built from its ``retain`` model; scoring that model against it gives
    PrivLeak 0 / forget quality 1 by construction, so reference rows are a second, independently trained
    retain model (``world:retain2``) or an independent retrain (the ``retrain`` method, its own seed)."""
    from unlearnbench.catalog import load_all
    from unlearnbench.runner import get_task

    load_all()
    spec = load_spec(path)
    for task in spec.tasks:
        if not get_task(task).references:
            continue
        for label, ckpt in _model_rows(spec, task):
            assert ckpt not in ("world:retain", "world:retrain"), (path.name, label)


def test_muse_and_tofu_tables_show_an_independent_retrain():
    for name, row in (("table_muse.yaml", "Retrain"), ("table_tofu.yaml", "Retain")):
        spec = load_spec(SHIPPED[0].parent / name)
        assert dict(_model_rows(spec, spec.tasks[0]))[row] == "world:retain2"


def test_sustainability_is_sequential():
    spec = load_spec(SHIPPED[0].parent / "table_muse_sustainability.yaml")
    assert all(r.base == "previous" for r in spec.rows if r.method is not None)
    assert [t.rsplit("-", 1)[-1] for t in spec.tasks] == ["1", "2", "3", "4"]  # requests in order


def test_base_previous_is_a_method_row_option():
    with pytest.raises(UserError, match="only apply to a `method` row"):
        parse_spec({"tasks": ["a"], "metrics": ["m"], "rows": [{"label": "X", "model": "m", "base": "previous"}]})
