"""``unlearnbench table --executor local|ray|slurm``: the same cells and numbers as the serial run,
no cell computed twice by processes sharing an output folder, killed tables resume.

The cells are digits cells (a classifier world: a cell takes about a second of CPU), so the
executors' own costs (spawning processes, starting Ray) dominate these tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearnbench.leaderboard import executors
from unlearnbench.leaderboard.table import load_spec, plan_cells, run_table

SPEC = """title: executors test
tasks: [digits/random-10]
seeds: [0, 1]
metrics: [ua, ra, ta]
rows:
  - {label: Target, model: world:target}
  - {label: GA, method: ga, config: {}}
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "executors.yaml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def serial(spec_file, tmp_path_factory) -> dict:
    """The reference: every cell run one after the other in this process."""
    out = tmp_path_factory.mktemp("serial")
    res = run_table(load_spec(spec_file), out)
    assert len(res["ran"]) == 3  # Target once (it trains nothing), GA for seeds 0 and 1
    return _cells(out)


def _cells(out: Path) -> dict:
    """{cell key: (metric values, per-sample rows)} read from the cells' files."""
    cells = {}
    for marker in sorted((Path(out) / "cells").glob("*.json")):
        doc = json.loads(marker.read_text())
        result = json.loads((Path(out) / "cells" / doc["result"]).read_text())
        rows = (Path(out) / "cells" / doc["result"]).parent / result["per_sample"]["path"]
        # everything but wall-clock time (the RTE metric and its per-run row)
        cells[marker.stem] = ({k: v["value"] for k, v in result["metrics"].items() if k != "rte"},
                              [r for r in map(json.loads, rows.read_text().splitlines()) if r["split"] != "run"])
    return cells


def _cli(spec_file: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, UNLEARNBENCH_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "unlearnbench.cli", "table", str(spec_file), "-o", str(out),
                             "--quiet", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- claims ------------------------------------------------------------------------------------
def test_a_claim_is_exclusive_and_a_dead_claim_is_taken_over(tmp_path, monkeypatch):
    assert executors.try_claim(tmp_path, "abc")
    assert not executors.try_claim(tmp_path, "abc")  # held by this (live) process
    executors.release(tmp_path, "abc")
    assert executors.try_claim(tmp_path, "abc")
    # a claim left by a process that no longer exists (a killed table) is stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = executors.claim_path(tmp_path, "dead")
    import socket

    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "time": time.time()}))
    assert executors.claim_is_stale(path) and executors.try_claim(tmp_path, "dead")
    # another host's claim is trusted until the TTL
    path = executors.claim_path(tmp_path, "far")
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time() - 100}))
    assert not executors.try_claim(tmp_path, "far")
    monkeypatch.setenv("UNLEARNBENCH_CLAIM_TTL", "50")
    assert executors.try_claim(tmp_path, "far")


def test_each_cell_runs_under_the_thread_policy(tmp_path, monkeypatch, spec_file):
    """As ``demo``: the cell's own work (world loading, data, metrics) runs on one thread even
    when the process uses more, and the process setting is restored after."""
    import torch

    from unlearnbench.leaderboard import table

    seen = []
    monkeypatch.setattr(table, "run_cell", lambda spec, job, out, progress=False: seen.append(torch.get_num_threads()))
    spec = load_spec(spec_file)
    job = plan_cells(spec)[0]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert executors.run_claimed(spec, job, tmp_path)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert not executors.claim_path(tmp_path, job.sha).exists()  # released


# -- executors ----------------------------------------------------------------------------------
def test_two_table_processes_on_one_folder_share_the_cells(spec_file, serial, tmp_path):
    """Two ``table`` commands started together on one output folder: each cell is computed once
    (the cells they report having run add up to the total), and both print the serial table."""
    out = tmp_path / "shared"
    a, b = _cli(spec_file, out), _cli(spec_file, out)
    logs = [p.communicate(timeout=600) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, logs
    ran = [int(re.search(r"\((\d+) cell\(s\) run", err).group(1)) for _, err in logs]
    assert sum(ran) == 3, logs  # the three cells, each computed by exactly one process
    assert _cells(out) == serial
    assert logs[0][0] == logs[1][0]  # the same table printed
    assert not list((out / "cells").glob("*.claim"))


@pytest.mark.slow
def test_local_processes_equal_serial(spec_file, serial, tmp_path):
    res = run_table(load_spec(spec_file), tmp_path, executor="local", workers=2)
    assert sorted(res["ran"]) == sorted(serial)
    assert _cells(tmp_path) == serial


def test_ray_executor_equals_serial(spec_file, serial, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        res = run_table(load_spec(spec_file), tmp_path, executor="ray", cpus=1)
    finally:
        ray.shutdown()
    assert sorted(res["ran"]) == sorted(serial)
    assert _cells(tmp_path) == serial


def test_slurm_path_in_submitit_debug_equals_serial(spec_file, serial, tmp_path):
    """The Slurm executor's job array through submitit's debug cluster (in this process)."""
    pytest.importorskip("submitit")
    # the Slurm options are validated by submitit's Slurm executor even on the debug cluster
    res = run_table(load_spec(spec_file), tmp_path, executor="slurm",
                    slurm={"cluster": "debug", "partition": "gpu", "time_min": 30})
    assert sorted(res["ran"]) == sorted(serial)
    assert _cells(tmp_path) == serial
    assert (tmp_path / "slurm").is_dir()


@pytest.mark.slow
def test_slurm_path_in_submitit_local_processes_equals_serial(spec_file, serial, tmp_path):
    """The same job array through submitit's local cluster: one process per cell, as on Slurm."""
    pytest.importorskip("submitit")
    res = run_table(load_spec(spec_file), tmp_path, executor="slurm", slurm={"cluster": "local"})
    assert sorted(res["ran"]) == sorted(serial)
    assert _cells(tmp_path) == serial


def test_a_killed_table_resumes(spec_file, serial, tmp_path):
    """A table killed mid-way left one cell done and one claimed by its dead process: a rerun
    keeps the done cell, takes over the dead claim and runs the rest."""
    import socket

    spec = load_spec(spec_file)
    jobs = plan_cells(spec)
    first = run_table(spec, tmp_path, only=[jobs[0].sha])
    assert first["ran"] == [jobs[0].sha]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    executors.claim_path(tmp_path, jobs[1].sha).write_text(
        json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "time": time.time()}))
    res = run_table(spec, tmp_path)
    assert sorted(res["ran"]) == sorted(j.sha for j in jobs[1:])
    assert _cells(tmp_path) == serial


def test_executor_options_are_checked(capsys):
    from unlearnbench.cli import main

    assert main(["table", "x.yaml", "--jobs", "0"]) == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert main(["table", "x.yaml", "--executor", "kubernetes"]) == 2
    assert "invalid choice" in capsys.readouterr().err
