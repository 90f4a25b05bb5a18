"""Seed statistics of a leaderboard entry and competition ranks.

Per metric and entry: the mean over seeds, the sample standard deviation (ddof=1) and a 95 %
**percentile bootstrap interval of the mean over seeds**: every resample (with replacement) of
the entry's seed values is averaged, and the interval is the 2.5 % and 97.5 % quantiles of
those means. With up to 6 seeds all ``n**n`` resamples are enumerated (exact, no random
numbers); beyond that 20,000 resamples are drawn with a fixed generator seed, so a board is
the same on every build. A resample mean always lies between the smallest and the largest
seed value, so the interval never leaves the metric's range (a Student-t interval over two
seeds can: UA [-8.99, 14.54] %). It measures the spread between seeds, not the sampling noise
of the evaluation set (each result's ``stderr`` holds that).

A *deterministic* entry (one seed, or every seed gave the same value up to rounding) has
std 0 and no interval; tables show its value without a spread.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

LEVEL = 0.95
EXACT_MAX_SEEDS = 6         # enumerate all n**n resamples up to here (46,656 for 6 seeds)
DRAWS = 20_000              # resamples drawn beyond EXACT_MAX_SEEDS
DRAW_SEED = 0               # fixed: the same board on every build
SAME_REL = 1e-12            # values equal to this relative precision count as one value

INTERVAL_METHOD = (f"{int(LEVEL * 100)} % percentile bootstrap interval of the mean over seeds (all n^n resamples "
                   f"enumerated up to {EXACT_MAX_SEEDS} seeds, {DRAWS:,} drawn beyond); it lies between the smallest "
                   "and largest seed value, so inside the metric's range. One seed or identical seeds: no interval.")


def bootstrap_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (None for fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n < 2:
        return None
    if n <= EXACT_MAX_SEEDS:
        idx = np.indices((n,) * n).reshape(n, -1)  # every resample, as n rows of indices
        means = v[idx].mean(axis=0)
    else:
        rng = np.random.default_rng(DRAW_SEED)
        means = v[rng.integers(0, n, size=(DRAWS, n))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(max(lo, v.min())), float(min(hi, v.max()))  # quantile round-off never leaves the data


def all_same(values: Sequence[float]) -> bool:
    v = np.asarray(values, dtype=np.float64)
    return bool(v.size <= 1 or np.all(np.abs(v - v[0]) <= SAME_REL * max(1.0, float(np.abs(v).max()))))


def seed_stats(values: Sequence[float | None]) -> dict:
    """``{mean, std, ci95, n_seeds, values, deterministic}`` over the finite values of ``values``."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    out = {"mean": float(finite.mean()) if n else None, "std": None, "ci95": None, "n_seeds": n,
           "values": [None if v is None or not math.isfinite(v) else float(v) for v in values],
           "deterministic": bool(n >= 1 and all_same(finite))}
    if n >= 2:
        if out["deterministic"]:
            out.update(mean=float(finite[0]), std=0.0)
        else:
            lo, hi = bootstrap_interval(finite)
            out.update(std=float(finite.std(ddof=1)), ci95=[lo, hi])
    return out


def competition_ranks(keys: list[float | None], higher_is_better: bool) -> list[int | None]:
    """Rank values ``1, 2, 2, 4`` (ties share the best rank); None ranks as None."""
    keys = [None if k is None else float(f"{k:.12g}") for k in keys]  # round-off never splits a tie
    present = [k for k in keys if k is not None]
    ranks: list[int | None] = []
    for k in keys:
        if k is None:
            ranks.append(None)
        else:
            ranks.append(1 + sum(1 for o in present if (o > k if higher_is_better else o < k)))
    return ranks
