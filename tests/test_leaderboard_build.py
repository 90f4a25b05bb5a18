"""leaderboard build (grouping, ranking, seed statistics) and render (md / latex / csv)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from scipy import stats

from test_leaderboard_fixtures import TASK, make_submission, register
from unlearnbench.cli import main
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.build import build_leaderboard, competition_ranks, load_leaderboard, seed_stats
from unlearnbench.leaderboard.html import pareto_front
from unlearnbench.leaderboard.render import latex_escape, render_leaderboard
from unlearnbench.leaderboard.schema import schema_problems

SHIFTS = {"Alpha": [0.10, 0.22, 0.15], "Beta": [0.60, 0.55, 0.71]}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("results")
    paths = []
    for label, shifts in SHIFTS.items():
        for seed, s in enumerate(shifts):
            paths.append(make_submission(root / f"{label}-{seed}", label, seed, s,
                                         method={"name": label.lower(), "config": {"lr": 0.1}}))
    paths.append(make_submission(root / "target", "Target", 0, 1.0))
    return paths


@pytest.fixture(scope="module")
def board(results):
    return build_leaderboard(results, title="Test board")


def test_build_groups_seeds_and_ranks_by_task_rule(board, results):
    assert schema_problems(board, "leaderboard") == []
    (task,) = board["tasks"]
    assert task["name"] == TASK and task["version"] == 3
    assert task["rank_by"] == {"metric": "dummy_gap", "higher_is_better": False}  # task's rank_by, metric's direction
    assert [e["label"] for e in task["entries"]] == ["Alpha", "Beta", "Target"]
    assert [e["rank"] for e in task["entries"]] == [1, 2, 3]
    assert [m["name"] for m in task["metrics"]] == ["dummy_gap", "dummy_forget", "dummy_utility"]
    assert task["axes"] == ["dummy_gap", "dummy_forget"]
    alpha = task["entries"][0]
    assert alpha["seeds"] == [0, 1, 2] and alpha["method"] == "alpha" and alpha["method_config"] == {"lr": 0.1}
    assert len(alpha["results"]) == 3 and all(r["commit"] is None or len(r["commit"]) == 40 for r in alpha["results"])
    assert alpha["results"][0]["hardware"]["device"] == "cpu"
    target = task["entries"][2]
    assert target["method"] is None and target["metrics"]["dummy_gap"]["std"] is None


def test_seed_statistics_match_numpy_scipy(board, results):
    alpha = board["tasks"][0]["entries"][0]
    docs = [json.loads(p.read_text()) for p in results[:3]]
    for metric in ("dummy_gap", "dummy_forget", "dummy_utility"):
        vals = np.array([d["metrics"][metric]["value"] for d in docs])
        s = alpha["metrics"][metric]
        assert s["values"] == list(vals) and s["n_seeds"] == 3
        assert s["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(vals.std(ddof=1), rel=1e-12)
        lo, hi = stats.t.interval(0.95, df=2, loc=vals.mean(), scale=stats.sem(vals))
        assert s["ci95"] == pytest.approx([lo, hi], rel=1e-10)


def test_seed_stats_edge_cases():
    s = seed_stats([1.0, None, 3.0], True)
    assert s["n_seeds"] == 2 and s["mean"] == 2.0 and s["values"] == [1.0, None, 3.0]
    assert seed_stats([None], False)["mean"] is None
    one = seed_stats([0.5], True)
    assert one["std"] is None and one["ci95"] is None


def test_competition_ranking():
    assert competition_ranks([0.5, 0.9, 0.9, None, 0.1], True) == [3, 1, 1, None, 4]
    assert competition_ranks([0.5, 0.9, 0.9, 0.1], False) == [2, 3, 3, 1]


def test_pareto_front():
    pts = [(1, 1), (2, 0.5), (0.5, 2), (0.4, 0.4), (2, 0.5)]
    assert pareto_front(pts, True, True) == [0, 1, 2, 4]
    assert pareto_front(pts, False, False) == [3]


def test_duplicate_seed_and_invalid_results_are_user_errors(results, tmp_path):
    dup = make_submission(tmp_path / "dup", "Alpha", 1, 0.3, method={"name": "alpha", "config": {"lr": 0.1}})
    with pytest.raises(UserError, match="seed 1 more than once"):
        build_leaderboard(results + [dup])
    bad = tmp_path / "bad.result.json"
    bad.write_text(json.dumps({"schema": "unlearnbench/result/v1"}))
    with pytest.raises(UserError, match=r"problem\(s\) in the results"):
        build_leaderboard([bad])


def test_ingested_results_join_the_board(results, tmp_path):
    p = make_submission(tmp_path / "ing", "Imported", 0, 0.3)
    doc = json.loads(p.read_text())
    doc.update(per_sample=None, ingested={"format": "tofu-legacy"})
    p.write_text(json.dumps(doc))
    board = build_leaderboard(results + [p])
    e = next(e for e in board["tasks"][0]["entries"] if e["label"] == "Imported")
    assert e["ingested"] == "tofu-legacy" and e["rank"] == 2


def test_undeclared_metrics_stay_out_of_rendered_tables(board):
    import copy

    b = copy.deepcopy(board)
    task = b["tasks"][0]
    task["metrics"].append({"name": "forget/dummy_forget", "higher_is_better": False, "headline": False})
    for e in task["entries"]:
        e["metrics"]["forget/dummy_forget"] = dict(e["metrics"]["dummy_forget"])
    assert schema_problems(b, "leaderboard") == []
    assert "forget/dummy_forget" not in render_leaderboard(b, "md")
    assert "forget/dummy_forget" not in render_leaderboard(b, "html").split('id="leaderboard-data"')[0]
    assert "forget/dummy_forget" in render_leaderboard(b, "csv")
    assert all(m["headline"] for m in board["tasks"][0]["metrics"])


def test_render_markdown(board):
    md = render_leaderboard(board, "md")
    assert md.startswith("# Test board")
    assert "| rank | label | method | seeds | dummy_gap ↓ | dummy_forget ↓ | dummy_utility ↑ |" in md
    alpha = board["tasks"][0]["entries"][0]["metrics"]["dummy_gap"]
    assert f"**{alpha['mean']:.3f} ± {alpha['std']:.3f}**" in md  # best (lowest) gap in bold
    lines = [ln for ln in md.splitlines() if ln.startswith("| 1 | Alpha")]
    assert len(lines) == 1


def test_render_latex(board):
    tex = render_leaderboard(board, "latex")
    assert r"\begin{tabular}{llllrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"dummy\_gap $\downarrow$" in tex and r"$\pm$" in tex and r"\textbf{" in tex
    assert "test-dummy/leaderboard (v3)" in tex
    assert latex_escape("a_b & 50% #1 {x} ~^\\") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"


def test_render_csv_is_long_and_full_precision(board):
    rows = list(csv.DictReader(io.StringIO(render_leaderboard(board, "csv"))))
    assert len(rows) == 3 * 3
    r = next(r for r in rows if r["label"] == "Beta" and r["metric"] == "dummy_utility")
    s = board["tasks"][0]["entries"][1]["metrics"]["dummy_utility"]
    assert float(r["mean"]) == s["mean"] and float(r["ci95_low"]) == s["ci95"][0]
    assert r["rank"] == "2" and r["seeds"] == "0 1 2" and r["higher_is_better"] == "true"


def test_cli_build_and_render(results, tmp_path, capsys):
    out = tmp_path / "lb.json"
    assert main(["leaderboard", "build", *map(str, results), "-o", str(out), "--title", "CLI"]) == 0
    board = load_leaderboard(out)
    assert board["title"] == "CLI"
    for fmt, needle in (("md", "# CLI"), ("latex", r"\begin{table}"), ("csv", "task,task_version,rank")):
        dst = tmp_path / f"lb.{fmt}"
        assert main(["leaderboard", "render", str(out), "--format", fmt, "-o", str(dst)]) == 0
        assert needle in dst.read_text()
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dict(board, tasks=[{"name": "x"}])))
    assert main(["leaderboard", "render", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "not a valid leaderboard v1 file" in err and len(err.strip().splitlines()) == 1
