"""Honest seeds: the run seed reaches every method's randomness (diffusion methods' own configs
included; a forget set that fits in one batch), and deterministic table rows are scored once."""

from __future__ import annotations

import pytest
import torch

import test_leaderboard_fixtures as fx
from test_diffusion_baselines import TASK as DIFFUSION_TASK
from test_diffusion_baselines import _changed, _data
from unlearnbench.display import fmt_stat
from unlearnbench.leaderboard.table import parse_spec, plan_cells
from unlearnbench.seeding import seed_everything


@pytest.fixture(scope="module")
def base(tiny_sd_dir):
    from unlearnbench.image_generator import load_image_generator

    return load_image_generator(str(tiny_sd_dir), device="cpu")


def _diffusion_run(name, base, seed):
    """``unlearn`` as the CLI runs it: the run seed set first, the config at its defaults."""
    from unlearnbench.unlearning import get_method, make_config

    m = get_method(name, "diffusion")
    cfg = make_config(m, {})
    seed_everything(seed)
    return m.unlearn(base, DIFFUSION_TASK, cfg, data=_data(), progress=False), cfg


@pytest.mark.parametrize("name", ["esd", "salun"])
def test_diffusion_methods_follow_the_run_seed(base, name):
    a, cfg_a = _diffusion_run(name, base, 1)
    b, _ = _diffusion_run(name, base, 1)
    c, cfg_c = _diffusion_run(name, base, 2)
    assert (cfg_a.seed, cfg_c.seed) == (1, 2)  # the record shows the seed used
    assert not _changed(a.unet, b.unet)  # same seed, same weights
    assert _changed(a.unet, c.unet)  # another seed, other weights


def test_explicit_config_seed_wins_over_the_run_seed(base):
    from unlearnbench.unlearning import get_method, make_config

    m = get_method("esd", "diffusion")
    outs = []
    for run_seed in (1, 2):
        seed_everything(run_seed)
        outs.append(m.unlearn(base, DIFFUSION_TASK, make_config(m, {"seed": 7}), data=_data(), progress=False))
    assert not _changed(outs[0].unet, outs[1].unet)


def test_ga_on_a_one_batch_forget_set_differs_between_seeds():
    """mini-MUSE (test scale) with a batch that holds the whole forget set: one batch per epoch."""
    from unlearnbench.runner import get_protocol, get_task
    from unlearnbench.unlearning import unlearn

    task = get_task("mini-muse/news")
    n = len(get_protocol(task).training_data(task)["forget"])
    over = {"max_steps": 2, "batch_size": n}  # the whole forget set fits in one batch
    runs = [unlearn(task.name, "ga", overrides=over, seed=s, progress=False)[0] for s in (0, 0, 1)]
    sha = [r.weights_sha256() for r in runs]
    assert sha[0] == sha[1] and sha[0] != sha[2]


def test_deterministic_rows_get_one_cell_and_no_spread():
    fx.register()
    spec = parse_spec({"title": "t", "tasks": [fx.TASK], "seeds": [0, 1, 2], "metrics": ["dummy_gap"],
                       "rows": [{"label": "Target", "model": "world:target"}, {"label": "Shift", "method": fx.METHOD}]})
    cells = plan_cells(spec)
    seeds = {label: sorted(c.seed for c in cells if c.row.label == label) for label in ("Target", "Shift")}
    assert seeds == {"Target": [0], "Shift": [0, 1, 2]}
    assert fmt_stat(0.5, None) == "0.500"  # one run: the value alone
    assert fmt_stat(0.5, 1.7e-17) == "0.500 ± 0"  # a spread that is rounding noise reads 0


def test_deterministic_classifier_method_gets_one_cell():
    from unlearnbench.unlearning import get_method

    assert get_method("ssd", "classifier").deterministic
    spec = parse_spec({"title": "t", "tasks": ["digits/random-10"], "seeds": [0, 1], "metrics": ["ua"],
                       "rows": [{"label": "SSD", "method": "ssd"}, {"label": "FT", "method": "ft"}]})
    cells = plan_cells(spec)
    assert sorted(c.seed for c in cells if c.row.label == "SSD") == [0]
    assert sorted(c.seed for c in cells if c.row.label == "FT") == [0, 1]
