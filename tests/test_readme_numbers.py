"""The README's demo table is what ``unlearnbench demo`` prints from an empty cache (3 significant
digits), and the cold demo loads the published world instead of training it. Slow (~2 min).
Regenerate the README's table with ``python tests/perf/readme_numbers.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "perf" / "readme_numbers.py"


def _script():
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_is_parsed_from_the_demo_section():
    table = _script().readme_table(_script().README.read_text(encoding="utf-8"))
    lines = table.splitlines()
    assert lines[0].startswith("| model | forget quality |")
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["target", "retain", "ga", "npo", "simnpo"]


@pytest.mark.slow
def test_cold_demo_prints_the_readme_numbers(tmp_path, monkeypatch):
    from unlearnbench import world_artefacts as wa
    from unlearnbench.demo import markdown_table, run_demo

    monkeypatch.setenv("UNLEARNBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_QUIET", "1")
    monkeypatch.delenv("UNLEARNBENCH_PREBUILT", raising=False)
    assert not wa.version_differences(), "installed versions differ from the lock: other numbers are expected"
    run_demo(progress=False, print_table=False)
    root = next((tmp_path / "worlds" / "mini-tofu").glob("default-*"))
    assert (root / "target" / "prebuilt.json").exists() and (root / "retain90" / "prebuilt.json").exists()
    assert not (root / "base").exists()  # nothing was trained
    mod = _script()
    assert markdown_table(run_demo.last["rows"]) == mod.readme_table(mod.README.read_text(encoding="utf-8"))
