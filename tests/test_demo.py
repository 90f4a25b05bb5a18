"""``unlearnbench demo``: argument checks (fast) and a test-scale run with its warm cache (slow)."""

from __future__ import annotations

import time

import pytest

from unlearnbench.errors import UserError


@pytest.fixture()
def test_home(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_QUIET", "1")
    return tmp_path


def test_unknown_or_repeated_method_fails_before_any_work(test_home):
    from unlearnbench.demo import run_demo

    with pytest.raises(UserError, match="did you mean"):
        run_demo("test", None, "ga,npoo")
    with pytest.raises(UserError, match="twice"):
        run_demo("test", None, "ga,ga")
    assert not (test_home / "worlds").exists()


def test_cli_reports_a_bad_method_in_one_line(test_home, capsys):
    from unlearnbench.cli import main

    assert main(["demo", "--scale", "test", "--methods", "gaa"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unlearnbench: error:") and "\n" not in err


@pytest.mark.slow
def test_demo_at_test_scale_writes_results_and_reruns_warm(test_home, capsys):
    from unlearnbench.demo import run_demo
    from unlearnbench.results import load_result

    out = test_home / "demo_out"
    assert run_demo("test", out, "ga", progress=False) == 0
    first = run_demo.last
    labels = [r["label"] for r in first["rows"]]
    assert labels == ["target", "retain", "ga"]
    table = capsys.readouterr().out
    assert "forget" in table and "utility" in table and "results:" in table
    files = sorted(p.name for p in out.glob("*.result.json"))
    assert len(files) == 3
    ga = load_result(out / [f for f in files if "__ga__" in f][0])
    assert ga["method"]["name"] == "ga" and ga["references"] and "unlearn_s" in ga["timings"]
    retain_fq = first["rows"][1]["forget quality"]
    assert retain_fq == pytest.approx(1.0)  # the retain model against its own statistics
    t0 = time.perf_counter()
    run_demo("test", out, "ga", progress=False)
    assert time.perf_counter() - t0 < 30  # warm: read back, nothing retrained
    assert run_demo.last["rows"] == first["rows"]
