"""Value ranges of method ``Config`` fields, declared once and checked for every method.

``--set`` values (and a task's ``method_defaults``) are parsed by type in
:func:`unlearnbench.unlearning.make_config`; :func:`check_config` then checks every field of
the built config against its :class:`Range`, before any data or model is loaded:

* a field may declare its own range in its dataclass metadata,
  ``field(default=..., metadata={"range": Range(min=0, max=1)})`` (or ``{"choices": (...)}``);
* otherwise the range comes from the field's *name*, which is the same across methods
  (:data:`BY_NAME`: ``epochs``, ``lr``, ``batch_size``, ``momentum``, ...; suffix rules
  such as ``*_lr`` and ``*_batch_size`` in :data:`BY_SUFFIX`);
* every float must be finite, every seed in ``[0, 2**32 - 1]``;
* ``None`` is accepted wherever the field's type allows it (``int | None``: "use the default").

``epochs`` may be 0 only when the config also sets ``max_steps`` (the LLM loop then runs
``max_steps`` steps).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from unlearnbench.errors import UserError


@dataclass(frozen=True)
class Range:
    """``min <= value <= max`` (``min_open`` / ``max_open``: strict); ``choices``: allowed values."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple | None = None

    def ok(self, v: Any) -> bool:
        if self.choices is not None:
            return v in self.choices
        if self.min is not None and (v < self.min or (self.min_open and v == self.min)):
            return False
        if self.max is not None and (v > self.max or (self.max_open and v == self.max)):
            return False
        return True

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = None if self.min is None else f"{'>' if self.min_open else '>='} {_num(self.min)}"
        hi = None if self.max is None else f"{'<' if self.max_open else '<='} {_num(self.max)}"
        return " and ".join(x for x in (lo, hi) if x) or "any value"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POSITIVE = Range(min=0, min_open=True)
AT_LEAST_1 = Range(min=1)
NON_NEGATIVE = Range(min=0)
FRACTION = Range(min=0, max=1)
SHARE = Range(min=0, max=1, min_open=True)  # a share of weights kept: (0, 1]
PROBABILITY_LT1 = Range(min=0, max=1, max_open=True)
SEED = Range(min=0, max=2**32 - 1)

#: ranges by field name, shared by every method's Config
BY_NAME: dict[str, Range] = {
    "epochs": AT_LEAST_1, "max_steps": AT_LEAST_1, "iterations": AT_LEAST_1, "grad_accum": AT_LEAST_1,
    "batch": AT_LEAST_1, "k": AT_LEAST_1, "hessian_interval": AT_LEAST_1, "n_timesteps": AT_LEAST_1,
    "fisher_samples": AT_LEAST_1, "max_prompts": AT_LEAST_1, "n_update_layers": AT_LEAST_1,
    "lr": POSITIVE, "beta": POSITIVE, "rho": POSITIVE, "kd_t": POSITIVE, "lora_alpha": POSITIVE,
    "weight_decay": NON_NEGATIVE, "max_grad_norm": NON_NEGATIVE, "lora_r": NON_NEGATIVE, "alpha": NON_NEGATIVE,
    "lamb": NON_NEGATIVE, "reg_lambda": NON_NEGATIVE, "erase_scale": NON_NEGATIVE, "preserve_scale": NON_NEGATIVE,
    "forget_weight": NON_NEGATIVE, "dampening": NON_NEGATIVE,
    "momentum": PROBABILITY_LT1, "lora_dropout": PROBABILITY_LT1, "warmup_ratio": FRACTION,
    "mask_ratio": SHARE, "salient_share": SHARE, "seed": SEED,
    "lr_schedule": Range(choices=("linear", "constant")), "retain_loss": Range(choices=("nll", "kl")),
}
#: ranges by name suffix (``attack_lr``, ``forget_batch_size``, ``ddim_steps`` ...)
BY_SUFFIX: tuple[tuple[str, Range], ...] = (("_lr", POSITIVE), ("batch_size", AT_LEAST_1), ("_steps", AT_LEAST_1))


def range_of(f: dataclasses.Field) -> Range | None:
    meta = f.metadata or {}
    if "range" in meta:
        return meta["range"]
    if "choices" in meta:
        return Range(choices=tuple(meta["choices"]))
    if f.name in BY_NAME:
        return BY_NAME[f.name]
    return next((r for suffix, r in BY_SUFFIX if f.name.endswith(suffix)), None)


def check_config(owner: str, config: Any, sources: dict[str, str] | None = None) -> None:
    """Raise one :class:`UserError` line for the first field of ``config`` outside its range.

    ``owner`` names the config in the message (``method npo``); ``sources`` maps a field to
    where its value came from (``--set``, the task's defaults), also named in the message.
    """
    sources = sources or {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if v is None or isinstance(v, bool):
            continue
        where = f" (from {sources[f.name]})" if f.name in sources else ""
        if isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"{owner}: {f.name} must be a finite number, not {v}{where}")
        rng = range_of(f)
        if f.name == "epochs" and getattr(config, "max_steps", None):
            rng = NON_NEGATIVE  # max_steps decides the length
        if rng is None:
            continue
        if rng.choices is None and not isinstance(v, (int, float)):
            continue  # a structured value (dict, list): its own method checks it
        if not rng.ok(v):
            raise UserError(f"{owner}: {f.name} must be {rng.describe()}, not {v!r}{where}")
