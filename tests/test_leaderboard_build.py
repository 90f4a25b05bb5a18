"""leaderboard build (grouping, reference rows, judged ranking, seed statistics) and render (md / latex / csv)."""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from test_leaderboard_fixtures import TASK, WIDE_TASK, make_submission, register
from unlearnbench.cli import main
from unlearnbench.display import fmt_number
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.build import build_leaderboard, load_leaderboard
from unlearnbench.leaderboard.plot import axis, pareto_front, place_labels, text_width
from unlearnbench.leaderboard.render import latex_escape, render_leaderboard
from unlearnbench.leaderboard.schema import schema_problems
from unlearnbench.leaderboard.stats import bootstrap_interval, competition_ranks, seed_stats

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
    paths.append(make_submission(root / "target", "Target", 0, 1.0, checkpoint="world:target"))
    paths.append(make_submission(root / "retain", "Retain", 0, -0.05, checkpoint="world:retain"))
    paths.append(make_submission(root / "retrain", "Retrain", 0, 0.02, method={"name": "retrain", "config": {}}))
    return paths


@pytest.fixture(scope="module")
def board(results):
    return build_leaderboard(results, title="Test board")


def _entry(board, label, task=0):
    return next(e for e in board["tasks"][task]["entries"] if e["label"] == label)


def test_reference_rows_are_shown_not_ranked(board):
    assert schema_problems(board, "leaderboard") == []
    (task,) = board["tasks"]
    assert task["name"] == TASK and task["version"] == 3
    assert task["rank_by"] == {"metric": "dummy_gap", "higher_is_better": False, "better": "lower"}
    assert [(e["label"], e["role"], e["rank"]) for e in task["entries"]] == [
        ("Target", "target", None), ("Retain", "reference", None), ("Retrain", "reference", None),
        ("Alpha", "ranked", 1), ("Beta", "ranked", 2)]
    # the retain model and Retrain would rank first on the gap: they are references, not competitors
    assert _entry(board, "Retain")["metrics"]["dummy_gap"]["mean"] < _entry(board, "Alpha")["metrics"]["dummy_gap"]["mean"]
    alpha = _entry(board, "Alpha")
    assert alpha["seeds"] == [0, 1, 2] and alpha["method"] == "alpha" and alpha["method_config"] == {"lr": 0.1}
    assert alpha["card"]["method"] == "alpha" and len(alpha["card"]["weights_sha256"]) == 3
    assert len(set(alpha["card"]["weights_sha256"])) == 3 and alpha["results"][0]["hardware"]["device"] == "cpu"


def test_gap_metrics_are_gaps_to_the_reference_artefact(board, results):
    """dummy_forget is declared `better: reference`: shown and judged as |value - reference value|."""
    meta = next(m for m in board["tasks"][0]["metrics"] if m["name"] == "dummy_forget")
    doc = json.loads(results[0].read_text())
    ref_file = results[0].parent / doc["references"][0]["path"]
    ref = json.loads(ref_file.read_text())["payload"]["metrics"]["dummy_forget"]
    assert meta["better"] == "reference" and meta["shown_as"] == "gap" and meta["reference_value"] == ref
    beta = _entry(board, "Beta")["metrics"]["dummy_forget"]
    values = [json.loads(p.read_text())["metrics"]["dummy_forget"]["value"] for p in results[3:6]]
    assert beta["values"] == values and beta["anchor"] == ref
    assert beta["distance"]["values"] == pytest.approx([abs(v - ref) for v in values], rel=1e-15)
    assert beta["distance"]["mean"] == pytest.approx(np.mean([abs(v - ref) for v in values]), rel=1e-15)


def test_seed_statistics_match_numpy_and_an_exact_bootstrap(board, results):
    alpha = _entry(board, "Alpha")
    docs = [json.loads(p.read_text()) for p in results[:3]]
    for metric in ("dummy_gap", "dummy_forget", "dummy_utility"):
        vals = np.array([d["metrics"][metric]["value"] for d in docs])
        s = alpha["metrics"][metric]
        assert s["values"] == list(vals) and s["n_seeds"] == 3 and not s["deterministic"]
        assert s["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(vals.std(ddof=1), rel=1e-12)
        means = sorted(np.mean([vals[i] for i in idx]) for idx in itertools.product(range(3), repeat=3))
        assert s["ci95"] == pytest.approx(list(np.quantile(means, [0.025, 0.975])), rel=1e-12)
        assert vals.min() <= s["ci95"][0] <= s["ci95"][1] <= vals.max()


def test_interval_never_leaves_the_range():
    """Two seeds of a percentage near its bound: Student's t leaves [0, 100], the bootstrap does not."""
    vals = [0.6, 4.95]
    t_lo, _ = stats.t.interval(0.95, df=1, loc=np.mean(vals), scale=stats.sem(vals))
    assert t_lo < -8  # the page's old UA [-8.99, 14.54] %
    lo, hi = bootstrap_interval(vals)
    assert 0.6 <= lo < hi <= 4.95
    many = np.random.default_rng(3).uniform(0, 1, size=9)  # > 6 seeds: drawn resamples, fixed generator
    a, b = bootstrap_interval(many)
    assert bootstrap_interval(many) == (a, b) and many.min() <= a < b <= many.max()
    ref = stats.bootstrap((many,), np.mean, method="percentile", n_resamples=20_000, random_state=1).confidence_interval
    assert a == pytest.approx(ref.low, abs=0.02) and b == pytest.approx(ref.high, abs=0.02)


def test_deterministic_rows_have_no_spread():
    s = seed_stats([0.1 + 0.2, 0.3, 0.3])  # differ by 5.6e-17: the same number
    assert s["deterministic"] and s["std"] == 0.0 and s["ci95"] is None
    one = seed_stats([0.5])
    assert one["deterministic"] and one["std"] is None and one["ci95"] is None
    s = seed_stats([1.0, None, 3.0])
    assert s["n_seeds"] == 2 and s["mean"] == 2.0 and s["values"] == [1.0, None, 3.0] and not s["deterministic"]
    assert seed_stats([None])["mean"] is None


def test_zero_spread_is_printed_as_zero(board):
    b = copy.deepcopy(board)
    alpha = _entry(b, "Alpha")["metrics"]["dummy_utility"]
    alpha.update(std=1.7e-17)
    md = render_leaderboard(b, "md")
    assert "1.70e-17" not in md and f"{alpha['mean']:.3f} ± 0" in md
    alpha.update(deterministic=True)
    assert f"{alpha['mean']:.3f} ±" not in render_leaderboard(b, "md")


def test_target_metric_is_judged_by_its_distance(tmp_path):
    """privleak (declared `better: target, target: 0`): the entry closest to 0 is best, not the most negative."""
    register()
    paths = [make_submission(tmp_path / name, name, 0, shift, task=WIDE_TASK, method={"name": name, "config": {}})
             for name, shift in (("under", -0.6), ("close", 0.05), ("over", 0.5))]
    board = build_leaderboard(paths)
    (t,) = board["tasks"]
    assert t["rank_by"]["metric"] == "privleak_gap" and [e["label"] for e in t["entries"]] == ["close", "over", "under"]
    privleak = {e["label"]: e["metrics"]["privleak"] for e in t["entries"]}
    assert privleak["under"]["mean"] < privleak["close"]["mean"] < privleak["over"]["mean"]
    assert privleak["close"]["distance"]["mean"] == pytest.approx(abs(privleak["close"]["mean"]))
    md = render_leaderboard(board, "md")
    bold = [ln for ln in md.splitlines() if f"**{fmt_number(privleak['close']['mean'])}**" in ln]
    assert len(bold) == 1 and bold[0].split("|")[2].strip() == "close"
    assert "privleak →0" in md and "mia_loss →0.5" in md


def test_competition_ranking():
    assert competition_ranks([0.5, 0.9, 0.9, None, 0.1], True) == [3, 1, 1, None, 4]
    assert competition_ranks([0.5, 0.9, 0.9, 0.1], False) == [2, 3, 3, 1]
    assert competition_ranks([0.3, 0.1 + 0.2, 0.2], False) == [2, 2, 1]  # round-off does not split a tie


def test_pareto_front():
    pts = [(1, 1), (2, 0.5), (0.5, 2), (0.4, 0.4), (2, 0.5)]
    assert pareto_front(pts, True, True) == [0, 1, 2, 4]
    assert pareto_front(pts, False, False) == [3]


def test_axes_stay_in_the_metric_range():
    _, _, labels, log = axis([6e-13, 2e-5, 0.51], (0.0, 1.0), 0, 100)  # forget quality: a p-value
    assert log and all(float(x) <= 1.0 for x in labels) and labels[-1] == "1.000"
    _, ticks, labels, log = axis([0.2, 0.9], (0.0, 1.0), 0, 100)
    assert not log and all(0 <= float(x) <= 1 for x in labels) and all(0 <= t <= 100 for t in ticks)
    _, _, labels, _ = axis([0.5, 4.0], (0.0, None), 0, 100)  # a gap: never below 0
    assert float(labels[0]) >= 0


def test_labels_of_crowded_points_do_not_overlap():
    pts = [(200 + 3 * i, 150 + 2 * (i % 3)) for i in range(8)] + [(60, 60), (440, 300)]
    labels = [f"method {i}" for i in range(10)]
    box = (0, 0, 500, 350)
    spots = place_labels(pts, labels, box)
    boxes = [(x - 2, y - 10.5, x - 2 + text_width(t), y + 3.5) for x, y, t, _, _ in filter(None, spots)]
    assert len(boxes) == 10
    for i, a in enumerate(boxes):
        assert box[0] <= a[0] and a[2] <= box[2] and box[1] <= a[1] and a[3] <= box[3]
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


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
    e = _entry(board, "Imported")
    assert e["ingested"] == "tofu-legacy" and e["rank"] == 2 and e["results"][0]["files"]["samples"] is None


def test_undeclared_metrics_stay_out_of_rendered_tables(board):
    b = copy.deepcopy(board)
    task = b["tasks"][0]
    task["metrics"].append({"name": "forget/dummy_forget", "higher_is_better": False, "headline": False})
    for e in task["entries"]:
        e["metrics"]["forget/dummy_forget"] = dict(e["metrics"]["dummy_forget"])
    assert schema_problems(b, "leaderboard") == []
    assert "forget/dummy_forget" not in render_leaderboard(b, "md")
    assert "forget/dummy_forget" in render_leaderboard(b, "csv")
    assert all(m["headline"] for m in board["tasks"][0]["metrics"])


def _md_rows(md: str) -> list[list[str]]:
    lines = [ln for ln in md.splitlines() if ln.startswith("|") and not set(ln) <= set("|:- ")]
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]


def test_render_markdown(board):
    from unlearnbench.display import fmt_number, fmt_stat  # the table's number format (3 significant digits)

    md = render_leaderboard(board, "md")
    assert md.startswith("# Test board")
    rows = _md_rows(md)
    assert rows[0] == ["rank", "label", "method", "seeds", "dummy_gap ↓", "dummy_forget Δ↓", "dummy_utility ↑"]
    assert [r[:2] for r in rows[1:]] == [["ref", "Target"], ["ref", "Retain"], ["ref", "Retrain"], ["1", "Alpha"],
                                         ["2", "Beta"]]
    alpha = _entry(board, "Alpha")["metrics"]["dummy_gap"]
    assert rows[4][4] == f"**{fmt_stat(alpha['mean'], alpha['std'])}**"  # best ranked gap in bold
    util = {r[1]: r[6] for r in rows[1:]}
    best = max(util, key=lambda k: float(util[k].strip("*").split()[0]))
    assert best in ("Retain", "Retrain") and not util[best].startswith("**")  # reference rows are never bold
    assert util["Alpha"].startswith("**")
    ref = next(m for m in board["tasks"][0]["metrics"] if m["name"] == "dummy_forget")["reference_value"]
    assert f"(dummy_forget {fmt_number(ref)})" in md and r"Δ: gap \|value − reference\|" in md


def test_render_latex(board):
    tex = render_leaderboard(board, "latex")
    assert r"\begin{tabular}{llllrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"dummy\_gap $\downarrow$" in tex and r"$\pm$" in tex and r"\bfseries" in tex
    assert r"$\Delta$$\downarrow$" in tex and "test-dummy/leaderboard (v3)" in tex
    assert latex_escape("a_b & 50% #1 {x} ~^\\") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"


def test_render_csv_is_long_and_full_precision(board):
    rows = list(csv.DictReader(io.StringIO(render_leaderboard(board, "csv"))))
    assert len(rows) == 5 * 3
    r = next(r for r in rows if r["label"] == "Beta" and r["metric"] == "dummy_utility")
    s = _entry(board, "Beta")["metrics"]["dummy_utility"]
    assert float(r["mean"]) == s["mean"] and float(r["ci95_low"]) == s["ci95"][0]
    assert r["rank"] == "2" and r["seeds"] == "0 1 2" and r["better"] == "higher" and r["role"] == "ranked"
    g = next(r for r in rows if r["label"] == "Beta" and r["metric"] == "dummy_forget")
    assert float(g["distance_mean"]) == _entry(board, "Beta")["metrics"]["dummy_forget"]["distance"]["mean"]
    assert next(r for r in rows if r["label"] == "Target")["rank"] == ""


def test_cli_build_and_render(results, tmp_path, capsys):
    out = tmp_path / "lb.json"
    assert main(["leaderboard", "build", *map(str, results), "-o", str(out), "--title", "CLI"]) == 0
    board = load_leaderboard(out)
    assert board["title"] == "CLI" and board["interval"].startswith("95 % percentile bootstrap")
    rel = board["tasks"][0]["entries"][0]["results"][0]["files"]["samples"]
    assert (tmp_path / rel).resolve().is_file()  # file links are relative to the board's folder
    for fmt, needle in (("md", "# CLI"), ("latex", r"\begin{table}"), ("csv", "task,task_version,variant")):
        dst = tmp_path / f"lb.{fmt}"
        assert main(["leaderboard", "render", str(out), "--format", fmt, "-o", str(dst)]) == 0
        assert needle in dst.read_text()
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dict(board, tasks=[{"name": "x"}])))
    assert main(["leaderboard", "render", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "not a valid leaderboard v1 file" in err and len(err.strip().splitlines()) == 1
