"""Every shipped table spec runs offline (embedded worlds, test scale) and fills every cell with a number.

One seed per spec (the first), every task, row and metric; slow (world builds and method runs)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from unlearnbench.leaderboard.table import assemble, check_spec, load_spec, run_table

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "leaderboard").glob("table_*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_spec_runs_offline_at_test_scale(path, tmp_path):
    from unlearnbench.catalog import load_all

    load_all()
    spec = load_spec(path)
    spec = dataclasses.replace(spec, seeds=spec.seeds[:1])
    assert check_spec(spec) == []
    res = run_table(spec, tmp_path / "out")
    assert all(p is not None for p in res["results"].values())
    table = assemble(spec, res["jobs"], res["results"], out=tmp_path / "out")
    assert [r.label for r in table.rows] == [r.label for r in spec.rows]
    for i, row in enumerate(table.rows):
        for c in table.columns:
            cell = table.cell(i, c.key)
            assert cell is not None and math.isfinite(cell["mean"]), (path.name, row.label, c.header)
