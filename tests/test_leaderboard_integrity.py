"""Forged or incomparable inputs are refused with one line naming what differs (issue 14, part 1).

Two kinds of edits: ``_tamper`` changes a result after the run (its run_id no longer matches),
``_genuine`` simulates a real result made differently (run_id recomputed, as the runner would),
which the comparability and task checks must still catch.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from test_leaderboard_fixtures import TASK, make_submission, register
from unlearnbench.cli import main
from unlearnbench.errors import UserError
from unlearnbench.leaderboard.build import build_leaderboard
from unlearnbench.leaderboard.checks import validate_file, validate_files
from unlearnbench.leaderboard.verify import verify_file, verify_files
from unlearnbench.results import run_id, sha256_file

GA = {"name": "ga", "config": {"lr": 1e-5}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp("integrity")
    return [make_submission(root / f"ga{s}", "GA", s, 0.3 + 0.05 * s, method=GA) for s in range(2)] + \
           [make_submission(root / "npo0", "NPO", 0, 0.2, method={"name": "npo", "config": {}})]


@pytest.fixture
def copies(runs, tmp_path):
    """Fresh copies of the module's result folders, safe to edit."""
    out = []
    for p in runs:
        dst = tmp_path / p.parent.name
        shutil.copytree(p.parent, dst)
        out.append(dst / p.name)
    return out


def _tamper(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _genuine(path, fn):
    def both(doc):
        fn(doc)
        doc["run_id"] = run_id(doc)

    _tamper(path, both)


def _one_line(capsys, argv) -> str:
    """Exit 2 and one line on stderr (validate/verify add their "0/1 file(s) ..." tally)."""
    assert main(argv) == 2
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if " file(s) " not in ln]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_genuine_results_validate_verify_and_build(copies, capsys):
    assert all(r.ok for r in validate_files(copies)), [r.lines() for r in validate_files(copies)]
    assert all(r.ok for r in verify_files(copies)), [r.lines() for r in verify_files(copies)]
    board = build_leaderboard(copies)
    assert [e["label"] for e in board["tasks"][0]["entries"]] == ["NPO", "GA"]
    assert main(["leaderboard", "verify", *map(str, copies)]) == 0


def test_other_world_scale_is_not_pooled(copies, capsys, tmp_path):
    """A test-scale and a default-scale result of one task: same name, version and spec hash."""
    _genuine(copies[1], lambda d: d["task"].update(scale="default", data_sha256="ab" * 32))
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies), "-o", str(tmp_path / "lb.json")])
    assert "differ in world scale (test vs default)" in err and "--separate" in err
    board = build_leaderboard(copies, separate=True)
    variants = sorted(t["variant"] for t in board["tasks"])
    assert variants == ["world scale default; data_sha256 abababababab…",
                        f"world scale test; data_sha256 {_data(copies[0])[:12]}…"]
    assert all(len(e["seeds"]) == 1 for t in board["tasks"] for e in t["entries"] if e["label"] == "GA")
    rep = verify_file(copies[1])
    assert any("world scale 'default'" in p for p in rep.problems)


def _data(path) -> str:
    return json.loads(path.read_text())["task"]["data_sha256"]


def test_other_data_is_not_pooled(copies, capsys, tmp_path):
    _genuine(copies[1], lambda d: d["task"].update(data_sha256="cd" * 32))
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies), "-o", str(tmp_path / "lb.json")])
    assert "differ in data_sha256" in err and "cdcdcdcdcdcd…" in err
    assert any("data_sha256 cdcdcdcdcdcd… is not the installed task's evaluation data" in p
               for p in verify_file(copies[1]).problems)


def test_other_reference_artefact_is_not_pooled(copies, capsys, tmp_path):
    ref = copies[1].parent / json.loads(copies[1].read_text())["references"][0]["path"]
    doc = json.loads(ref.read_text())
    doc["payload"]["forget_values"][0] += 0.5
    ref.write_text(json.dumps(doc))
    _genuine(copies[1], lambda d: d["references"][0].update(sha256=sha256_file(ref)))
    assert validate_file(copies[1]).ok  # a well-formed result ...
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies), "-o", str(tmp_path / "lb.json")])
    assert "differ in reference artefacts" in err  # ... scored against another reference


def test_other_settings_are_named(copies, capsys, tmp_path):
    task = register()
    for p, n in ((copies[0], 64), (copies[1], 128)):
        settings = dict(task.settings, max_new_tokens=n)
        _genuine(p, lambda d: d["task"].update(settings=settings, spec_sha256=task.replace(settings=settings).spec_hash()))
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies[:2]), "-o", str(tmp_path / "lb.json")])
    assert "differ in settings.max_new_tokens (64 vs 128)" in err
    problems = verify_file(copies[0]).problems
    assert not any("spec" in p for p in problems)  # recorded effective settings: the spec is rebuilt from them
    assert any("built with other scoring settings" in p for p in problems)  # ... and its reference is not theirs


def test_other_template_splits_an_entry_only_when_asked(copies, capsys, tmp_path):
    _genuine(copies[1], lambda d: d["model"].update(template={"name": "llama2"}))
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies), "-o", str(tmp_path / "lb.json")])
    assert "entry 'GA'" in err and "differ in template (none vs" in err
    board = build_leaderboard(copies, separate=True)
    labels = sorted(e["label"] for e in board["tasks"][0]["entries"])
    assert labels == ["GA [template none]", "GA [template {\"name\": \"llama2\"}]", "NPO"]


def test_a_seed_copy_is_refused(copies, capsys, tmp_path):
    """A copy of a result with only the seed changed (same run_id and weights): not a second seed."""
    forged = copies[0].parent / "forged.result.json"
    shutil.copy(copies[0], forged)
    _tamper(forged, lambda d: d.update(seed=7))
    rep = validate_file(forged)
    assert any("run_id" in p and "does not match" in p and "edited after the run" in p for p in rep.problems)
    _genuine(forged, lambda d: None)  # the forger recomputes run_id too
    assert validate_file(forged).ok
    problems = [p for r in validate_files([copies[0], forged]) for p in r.problems]
    assert len(problems) == 1 and "the same run as" in problems[0] and "under seed 7 vs 0" in problems[0]
    err = _one_line(capsys, ["leaderboard", "build", str(copies[0]), str(forged), "-o", str(tmp_path / "lb.json")])
    assert "same run" in err
    assert main(["leaderboard", "validate", str(copies[0]), str(forged)]) == 2


def test_an_exact_copy_is_refused(copies):
    dup = copies[0].parent / "dup.result.json"
    shutil.copy(copies[0], dup)
    problems = [p for r in validate_files([copies[0], dup]) for p in r.problems]
    assert len(problems) == 1 and "(run_id" in problems[0] and "a copy" in problems[0]


@pytest.mark.parametrize("field", ["task", "model", "method"])
def test_editing_what_identifies_the_run_breaks_run_id(copies, field):
    edits = {"task": lambda d: d["task"].update(version=2), "model": lambda d: d["model"].update(weights_sha256="0" * 64),
             "method": lambda d: d["method"]["config"].update(lr=1.0)}
    _tamper(copies[0], edits[field])
    assert any("run_id" in p for p in validate_file(copies[0]).problems)


def test_deleting_a_headline_metric_fails_verify(copies, capsys):
    _tamper(copies[0], lambda d: d["metrics"].pop("dummy_gap"))
    assert validate_file(copies[0]).ok  # still well-formed ...
    problems = verify_file(copies[0]).problems  # ... but not the whole truth
    assert problems == ["missing metric(s) dummy_gap: the task's protocol computes them from these per-sample rows "
                        "and references, so the result must report them"]
    err = _one_line(capsys, ["leaderboard", "verify", "--quiet", str(copies[0])])
    assert "missing metric(s) dummy_gap" in err


def test_renamed_task_fails_verify(copies):
    """A result of one task relabelled as another task of the same protocol (and recomputed run_id)."""
    _genuine(copies[0], lambda d: d["task"].update(name=TASK + "-other"))
    problems = verify_file(copies[0]).problems
    assert any(p.startswith("spec_sha256") and "not the installed test-dummy/leaderboard-other spec's" in p
               for p in problems)
    assert any(p.startswith("data_sha256") for p in problems)


def test_scored_without_the_reference_is_refused(tmp_path):
    p = make_submission(tmp_path / "noref", "GA", 0, 0.3, method=GA, reference=False)
    problems = validate_file(p).problems
    assert problems == [f"scored without the reference artefact(s) task {TASK} needs (retain): the metrics computed "
                        "against it are missing"]


def test_a_limited_result_is_refused_by_build(copies, capsys, tmp_path):
    _genuine(copies[0], lambda d: d["task"].update(limit=5))
    rep = validate_file(copies[0])
    assert rep.ok and any("--limit" in n for n in rep.notes)
    err = _one_line(capsys, ["leaderboard", "build", *map(str, copies), "-o", str(tmp_path / "lb.json")])
    assert "scored with --limit 5" in err and str(copies[0]) in err
    with pytest.raises(UserError, match="--limit"):
        build_leaderboard(copies, separate=True)  # --separate never admits a subset


@pytest.mark.parametrize("bad,words", [({"path": "../x.png"}, "escapes the submission folder"),
                                       ({"path": "missing.png"}, "attachment missing"),
                                       ({"sha256": "0" * 64}, "does not match its recorded sha256")])
def test_attachments_are_checked(copies, bad, words):
    sheet = copies[0].parent / "sheet.png"
    sheet.write_bytes(b"\x89PNG fake")
    (copies[0].parent.parent / "x.png").write_bytes(b"x")
    att = dict({"role": "contact_sheet", "path": "sheet.png", "sha256": sha256_file(sheet)}, **bad)
    _tamper(copies[0], lambda d: d.update(attachments=[att]))
    assert any(words in p for p in validate_file(copies[0]).problems)


def test_result_files_are_world_readable(runs):
    umask = os.umask(0)
    os.umask(umask)
    for p in runs:
        samples = p.parent / json.loads(p.read_text())["per_sample"]["path"]
        for f in (samples, p):
            assert f.stat().st_mode & 0o777 == 0o666 & ~umask
