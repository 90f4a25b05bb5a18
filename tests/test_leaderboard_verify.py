"""leaderboard validate / verify: schema, paths, hashes, and recomputation catch every tampering."""

from __future__ import annotations

import json
import shutil

import pytest

from test_leaderboard_fixtures import TASK, make_submission, register
from unlearnbench.cli import main
from unlearnbench.leaderboard.checks import validate_file
from unlearnbench.leaderboard.verify import verify_file
from unlearnbench.leaderboard.schema import load_schema, schema_problems, walk_undocumented
from unlearnbench.results import sha256_file


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    register()
    folder = tmp_path_factory.mktemp("submission")
    return make_submission(folder, "GA", 0, 0.4, method={"name": "ga", "config": {"lr": 1e-5}})


@pytest.fixture
def sub(pristine, tmp_path):
    """A fresh copy of the pristine submission folder, safe to tamper with."""
    dst = tmp_path / "sub"
    shutil.copytree(pristine.parent, dst)
    return dst / pristine.name


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_schemas_are_documented_and_valid():
    for kind in ("result", "leaderboard"):
        schema = load_schema(kind)
        assert schema["$schema"].endswith("2020-12/schema")
        assert walk_undocumented(schema) == []
    assert walk_undocumented({"properties": {"x": {"type": "string"}}}) == [".x"]


def test_pristine_result_validates_and_verifies(sub, capsys):
    assert validate_file(sub).ok
    rep = verify_file(sub)
    assert rep.ok, rep.lines()
    code, out, _ = _cli(capsys, "leaderboard", "verify", str(sub))
    assert code == 0 and "1/1 file(s) verified" in out


def test_edited_number_is_rejected(sub, capsys):
    _edit(sub, lambda d: d["metrics"]["dummy_forget"].update(value=d["metrics"]["dummy_forget"]["value"] + 1e-6))
    assert validate_file(sub).ok  # well-formed ...
    rep = verify_file(sub)       # ... but not true
    assert not rep.ok and any("dummy_forget: stored value" in p for p in rep.problems)
    code, _, err = _cli(capsys, "leaderboard", "verify", str(sub))
    assert code == 2
    lines = [ln for ln in err.splitlines() if "dummy_forget" in ln]
    assert len(lines) == 1 and lines[0].startswith(str(sub)) and "Traceback" not in err


def test_relative_tolerance_is_tight(sub):
    _edit(sub, lambda d: d["metrics"]["dummy_utility"].update(value=d["metrics"]["dummy_utility"]["value"] * (1 + 1e-11)))
    assert verify_file(sub).ok  # round-off level: accepted
    _edit(sub, lambda d: d["metrics"]["dummy_utility"].update(value=d["metrics"]["dummy_utility"]["value"] * (1 + 1e-7)))
    assert not verify_file(sub).ok


def test_edited_stderr_and_n_are_rejected(sub):
    _edit(sub, lambda d: d["metrics"]["dummy_forget"].update(n=7, stderr=0.5))
    problems = verify_file(sub).problems
    assert any("stored n 7" in p for p in problems) and any("stored stderr 0.5" in p for p in problems)


def test_edited_sample_is_rejected_by_hash(sub):
    samples = sub.parent / json.loads(sub.read_text())["per_sample"]["path"]
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    rows[0]["value"] += 0.25
    samples.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    rep = validate_file(sub)
    assert not rep.ok and any("sha256" in p and "edited or replaced" in p for p in rep.problems)
    assert not verify_file(sub).ok


def test_edited_sample_with_forged_hash_is_rejected_by_recompute(sub):
    samples = sub.parent / json.loads(sub.read_text())["per_sample"]["path"]
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    rows[0]["value"] += 0.25
    samples.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    _edit(sub, lambda d: d["per_sample"].update(sha256=sha256_file(samples)))
    assert validate_file(sub).ok
    problems = verify_file(sub).problems
    assert any("dummy_forget: stored value" in p for p in problems)
    assert any("dummy_gap: stored value" in p for p in problems)
    assert not any("dummy_utility" in p for p in problems)  # retain rows untouched


def test_tampered_reference_is_rejected(sub):
    ref = sub.parent / json.loads(sub.read_text())["references"][0]["path"]  # the copy bundled beside the result
    doc = json.loads(ref.read_text())
    doc["payload"]["forget_values"][0] += 1.0
    ref.write_text(json.dumps(doc))
    assert any("does not match its recorded sha256" in p for p in validate_file(sub).problems)
    _edit(sub, lambda d: d["references"][0].update(sha256=sha256_file(ref)))  # forged hash: recompute catches it
    assert any("dummy_gap: stored value" in p for p in verify_file(sub).problems)


@pytest.mark.parametrize("bad,words", [("../x.jsonl", "escapes the submission folder"),
                                       ("/etc/passwd", "is absolute"),
                                       ("sub/../../x.jsonl", "escapes the submission folder")])
def test_paths_may_not_leave_the_submission(sub, bad, words, capsys):
    (sub.parent.parent / "x.jsonl").write_text("{}\n")
    _edit(sub, lambda d: d["per_sample"].update(path=bad))
    rep = validate_file(sub)
    assert not rep.ok and any(words in p for p in rep.problems)
    code, _, err = _cli(capsys, "leaderboard", "validate", str(sub))
    assert code == 2 and words in err and "Traceback" not in err


def test_absolute_reference_needs_local(sub):
    ref = sub.parent / "reference.json"
    _edit(sub, lambda d: d["references"][0].update(path=str(ref.resolve())))
    assert any("is absolute" in p for p in validate_file(sub).problems)
    assert verify_file(sub, allow_external_references=True).ok


def test_root_widens_the_submission_folder(sub):
    (sub.parent / "inner").mkdir()
    moved = sub.parent / "inner" / sub.name
    sub.rename(moved)
    _edit(moved, lambda d: (d["per_sample"].update(path="../" + d["per_sample"]["path"]),
                            d["references"][0].update(path="../reference.json"),
                            [a.update(path="../" + a["path"]) for a in d.get("attachments", [])]))
    assert not validate_file(moved).ok
    assert verify_file(moved, root=sub.parent).ok


def test_missing_sample_file_and_unknown_names(sub):
    samples = sub.parent / json.loads(sub.read_text())["per_sample"]["path"]
    samples.unlink()
    assert any("per-sample file missing" in p for p in validate_file(sub).problems)
    _edit(sub, lambda d: d["task"].update(name="test-dummy/leaderbord"))
    problems = validate_file(sub).problems
    assert any("unknown task 'test-dummy/leaderbord'" in p and "did you mean" in p for p in problems)


def test_unknown_metric_and_wrong_direction(sub):
    _edit(sub, lambda d: d["metrics"].update(made_up={"value": 1.0, "higher_is_better": True, "n": 1, "stderr": None}))
    assert any("unknown metric 'made_up'" in p for p in validate_file(sub).problems)
    per_split = {"value": 1.0, "higher_is_better": False, "n": 1}
    _edit(sub, lambda d: (d["metrics"].pop("made_up"), d["metrics"].update({"forget/dummy_forget": per_split,
                                                                           "forget/made_up": per_split})))
    problems = validate_file(sub).problems  # "<split>/<metric>" variants of known metrics are accepted
    assert [p for p in problems if "unknown metric" in p] == ["unknown metric 'forget/made_up' (neither registered "
                                                             "nor declared by task test-dummy/leaderboard)"]
    _edit(sub, lambda d: (d["metrics"].pop("forget/made_up"), d["metrics"].pop("forget/dummy_forget")))
    _edit(sub, lambda d: (d["metrics"].update(forget_quality={"value": 0.5, "higher_is_better": False, "n": 1})))
    assert any("forget_quality: higher_is_better is False" in p for p in validate_file(sub).problems)


def test_schema_violations_are_one_line_each(sub, capsys):
    _edit(sub, lambda d: (d.pop("label"), d["metrics"]["dummy_forget"].update(value="high")))
    problems = validate_file(sub).problems
    assert any(p.startswith("(top level): 'label' is a required property") for p in problems)
    assert any(p.startswith("metrics.dummy_forget.value:") for p in problems)
    code, _, err = _cli(capsys, "leaderboard", "validate", "--quiet", str(sub), str(sub.parent / "nope.json"))
    assert code == 2 and "nope.json: result file not found" in err and "0/2 file(s) valid" in err


def test_version_mismatch(sub):
    from unlearnbench.results import run_id

    _edit(sub, lambda d: (d["task"].update(version=2), d.update(run_id=run_id(d))))  # as if scored on version 2
    rep = validate_file(sub)
    assert rep.ok and any("version 2" in n for n in rep.notes)
    assert any("cannot verify" in p and "version 2" in p for p in verify_file(sub).problems)


def test_ingested_result_without_samples(sub, capsys):
    _edit(sub, lambda d: d.update(per_sample=None))
    problems = validate_file(sub).problems
    assert problems == ["per_sample is null, which only an ingested result may have (it declares no 'ingested' "
                        "provenance)"]
    _edit(sub, lambda d: d.update(ingested={"format": "tofu-legacy", "model_logs_sha256": "0" * 64}))
    rep = validate_file(sub)
    assert rep.ok and any("ingested result (format tofu-legacy)" in n for n in rep.notes)
    assert any("--allow-ingested" in p for p in verify_file(sub).problems)
    assert verify_file(sub, allow_ingested=True).ok
    code, _, err = _cli(capsys, "leaderboard", "verify", str(sub))
    assert code == 2 and "cannot verify: ingested result" in err


def test_schema_problems_reports_if_then_clearly():
    doc = {"schema": "unlearnbench/result/v1", "per_sample": None}
    problems = schema_problems(doc)
    assert problems[0].startswith("per_sample is null")
    assert not any("'ingested' is a required" in p for p in problems)
    assert TASK  # the fixture module registers on import of register()
