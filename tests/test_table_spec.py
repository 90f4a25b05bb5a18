"""`unlearnbench table`: spec parsing, cell keys, cached cells (re-run fills only missing ones), output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import test_leaderboard_fixtures as fx
from unlearnbench.cli import main
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.verify import verify_file
from unlearnbench.results import canonical_json_hash
from unlearnbench.leaderboard.table import check_spec, load_spec, parse_spec, plan_cells

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "leaderboard").glob("table_*.yaml"))


def _md_rows(md: str) -> list[list[str]]:
    """The cells of a Markdown table (header first), separator line dropped."""
    lines = [ln for ln in md.splitlines() if ln.startswith("|") and not set(ln) <= set("|:- ")]
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]


def _spec_file(tmp_path, **over) -> Path:
    doc = {"title": "Dummy table", "tasks": [fx.TASK], "seeds": [0, 1],
           "metrics": ["dummy_gap", "dummy_utility"],
           "rows": [{"label": "Target", "model": "world:target"}, {"label": "Retain", "method": "retain"},
                    {"label": "Shift", "method": fx.METHOD, "config": {"lr": "1e-1"}},
                    {"label": "Shift big", "method": fx.METHOD, "config": {"lr": 0.8}}]}
    doc.update(over)
    p = tmp_path / "spec.yaml"
    import yaml

    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


@pytest.fixture
def dummy(monkeypatch):
    fx.register()
    import unlearnbench.runner

    monkeypatch.setattr(unlearnbench.runner, "load_model", fx.fake_load_model)
    fx.DummyWorld().reference(fx.register())  # built once per session; not counted below
    fx.CALLS.update(unlearn=0, infer=0)
    return fx


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_specs_parse_and_check(path):
    spec = load_spec(path)
    assert spec.rows and spec.metrics and spec.seeds
    from unlearnbench.catalog import load_all

    load_all()
    assert check_spec(spec) == []
    if spec.real_tasks:
        assert check_spec(spec, real=True) == []


@pytest.mark.parametrize("change,msg", [
    ({"rowz": []}, "unknown key 'rowz'; did you mean 'rows'?"),
    ({"seeds": [0, 0]}, "lists a seed twice"),
    ({"seeds": ["a"]}, "list of integers"),
    ({"tasks": []}, "`tasks` must be a non-empty list"),
    ({"rows": [{"label": "X", "method": "ga", "model": "world:target"}]}, "exactly one of `method` or `model`"),
    ({"rows": [{"label": "X"}]}, "exactly one of `method` or `model`"),
    ({"rows": [{"label": "X", "model": "a"}, {"label": "X", "model": "b"}]}, "label 'X' is used twice"),
    ({"rows": [{"label": "X", "method": "ga", "confg": {}}]}, "unknown key 'confg'; did you mean 'config'?"),
    ({"rows": [{"label": "X", "model": "world:target", "config": {"lr": 1}}]}, "only apply to a `method` row"),
])
def test_bad_specs_are_user_errors(tmp_path, change, msg):
    with pytest.raises(UserError, match=msg.replace("(", r"\(").replace("?", r"\?")):
        load_spec(_spec_file(tmp_path, **change))


def test_bad_yaml_and_registry_problems(tmp_path, dummy, capsys):
    p = tmp_path / "broken.yaml"
    p.write_text("tasks: [a\nrows: 1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_spec(p)
    spec = parse_spec({"tasks": [fx.TASK, "mini-tofu/forget11"], "metrics": ["dummy_gap", "nope"],
                       "rows": [{"label": "A", "method": "no-such-method"}]})
    problems = check_spec(spec)
    assert any("unknown task 'mini-tofu/forget11'" in x for x in problems)
    assert any("does not report metric 'nope'" in x for x in problems)
    assert any("unknown classifier method 'no-such-method'" in x for x in problems)
    bad = _spec_file(tmp_path, metrics=["nope"])
    assert main(["table", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert "does not report metric 'nope'" in capsys.readouterr().err
    assert main(["table", str(bad), "--real"]) == 2
    assert "--real needs `real_tasks`" in capsys.readouterr().err


def test_cell_keys_resolve_configs(tmp_path, dummy):
    spec = load_spec(_spec_file(tmp_path))
    cells = plan_cells(spec)
    assert len(cells) == 2 + 2 * 2 and len({c.sha for c in cells}) == 6  # model rows: one cell (deterministic)
    shift = [c for c in cells if c.row.label == "Shift"][0]
    assert shift.key["config"] == {"lr": 0.1} and shift.key["task_version"] == 3 and shift.key["scale"] == "test"
    same = parse_spec({"tasks": [fx.TASK], "metrics": ["dummy_gap"], "seeds": [0],
                       "rows": [{"label": "Renamed", "method": fx.METHOD, "config": {"lr": 0.1}}]})
    assert plan_cells(same)[0].sha == shift.sha  # label-independent; "1e-1" and 0.1 are the same config
    retain = [c for c in cells if c.row.label == "Retain"][0]
    assert retain.key["method"] is None and retain.key["model"] == "world:retain"


def test_table_runs_missing_cells_only(tmp_path, dummy, capsys):
    spec_path, out = _spec_file(tmp_path), tmp_path / "out"
    assert main(["table", str(spec_path), "-o", str(out), "--quiet"]) == 0
    assert fx.CALLS == {"unlearn": 4, "infer": 6}  # Target and Retain are scored once
    md = (out / "table.md").read_text()
    assert [r[0] for r in _md_rows(md)[1:]] == ["Target", "Retain", "Shift", "Shift big"]
    assert _md_rows(md)[0] == ["method", "dummy_gap ↓", "dummy_utility ↑"]

    # every cell is a self-contained submission whose numbers verify
    markers = sorted((out / "cells").glob("*.json"))
    assert len(markers) == 6
    for m in markers:
        doc = json.loads(m.read_text())
        result = out / "cells" / doc["result"]
        assert m.stem == canonical_json_hash(doc["key"])  # the cell is named by the hash of its key
        rep = verify_file(result)
        assert rep.ok, rep.lines()

    # the numbers in the table are the mean ± std of the cells' values
    spec = load_spec(spec_path)
    cells = {c.sha: c for c in plan_cells(spec)}
    vals = [json.loads((out / "cells" / json.loads((out / "cells" / f"{sha}.json").read_text())["result"]).read_text())
            ["metrics"]["dummy_gap"]["value"] for sha, c in cells.items() if c.row.label == "Shift big"]
    row = next(r for r in _md_rows(md) if r[0] == "Shift big")
    assert row[1].strip("*") == f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"

    # re-run: nothing to do
    capsys.readouterr()
    assert main(["table", str(spec_path), "-o", str(out), "--quiet"]) == 0
    assert fx.CALLS == {"unlearn": 4, "infer": 6}
    assert "0 cell(s) run, 6/6 done" in capsys.readouterr().err

    # drop one method cell and one model cell: exactly those two run again
    victims = [c for c in cells.values() if (c.row.label, c.seed) in (("Shift", 1), ("Target", 0))]
    for c in victims:
        (out / "cells" / f"{c.sha}.json").unlink()
    assert main(["table", str(spec_path), "-o", str(out), "--quiet"]) == 0
    assert fx.CALLS == {"unlearn": 5, "infer": 8}
    assert (out / "table.md").read_text() == md  # same seeds, same numbers


def test_table_list_cell_and_formats(tmp_path, dummy, capsys):
    spec_path, out = _spec_file(tmp_path, seeds=[0]), tmp_path / "out"
    assert main(["table", str(spec_path), "-o", str(out), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("missing" in ln for ln in lines)
    key = lines[2].split()[0]
    assert main(["table", str(spec_path), "-o", str(out), "--cell", key[:10], "--format", "csv", "--quiet"]) == 0
    assert fx.CALLS["unlearn"] == 1
    rows = list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))
    assert [r["method"] for r in rows] == ["Target", "Retain", "Shift", "Shift big"]
    assert rows[0]["dummy_gap mean"] == "" and rows[2]["dummy_gap n"] == "1" and rows[2]["dummy_gap std"] == ""
    done = [json.loads(m.read_text()) for m in (out / "cells").glob("*.json")]
    assert float(rows[2]["dummy_gap mean"]) == done[0]["metrics"]["dummy_gap"]  # full precision
    capsys.readouterr()
    assert main(["table", str(spec_path), "-o", str(out), "--list"]) == 0
    assert sum("done" in ln for ln in capsys.readouterr().out.splitlines()) == 1
    assert main(["table", str(spec_path), "-o", str(out), "--no-run", "--format", "latex", "--quiet"]) == 0
    tex = (out / "table.tex").read_text()
    assert r"\begin{tabular}{lrr}" in tex and "Shift big & -- & --" in tex
    assert main(["table", str(spec_path), "-o", str(out), "--cell", "ffffnotakey"]) == 2
