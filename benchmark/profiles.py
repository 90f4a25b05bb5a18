"""Scoring profiles and the scoring options of ``score``: named, recorded ways to score a task.

A profile is a set of task ``settings`` (prompt template, label span, attention mask,
generation length and decoding) that reproduces another tool's numbers. Applying one, or
any scoring option (``--system-prompt``, ``--max-new-tokens``, ``--limit``), returns a
modified :class:`TaskSpec` (``task.replace(settings=...)``), so ``spec_sha256`` changes with
it and the effective settings are written into the result's ``task`` block.

==================  ===========================================================================
``default``         this suite's scoring (README "The TOFU protocol"): the checkpoint's or the
                    task's template (else the tokenizer's chat template with its own default
                    system prompt), answer tokens + one EOS scored, 128 new tokens (TOFU).
``open-unlearning`` locuslab/open-unlearning at d3d7cf9 (``configs/eval/tofu.yaml``,
                    ``src/data/utils.py``, ``src/evals/metrics/utils.py``): chat template with
                    the system prompt "You are a helpful assistant.", the scored span is the
                    rendered assistant turn plus an appended EOS, ``attention_mask = input_ids
                    != pad_token_id`` (with pad = EOS every EOS in the sequence is hidden, its
                    issue #128), greedy 200 new tokens stopped at EOS, text decoded without
                    special tokens, transformers-4 space clean-up, stripped; ROUGE against the
                    answer as decoded the same way; PrivLeak against AUC 0.5 when no retain
                    reference is given (its ``ref_value``). Matches its per-item logs to
                    < 2e-4 relative (``tests/test_ou_parity.py``).
``tofu``            locuslab/tofu (``data_module.py``, ``evaluate_util.py``): the family
                    template (default ``qa``: ``"Question: {q}\\nAnswer: "``), the first
                    ``len(tokenize(prompt))`` tokens masked, one EOS label, generation up to
                    200 tokens in total (prompt included).
==================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from unlearnbench.errors import UserError
from unlearnbench.spec import TaskSpec

OU_SYSTEM_PROMPT = "You are a helpful assistant."  # open-unlearning configs/model/*.yaml template_args
OU_DATE_STRING = "10 Apr 2025"  # its template_args.date_string (printed by Llama-3 chat templates)


@dataclass(frozen=True)
class Profile:
    name: str
    protocols: tuple[str, ...]  # protocols the profile applies to
    description: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("default", ("tofu", "muse", "wmdp"), "this suite's own scoring (see the README)", {}),
    Profile("open-unlearning", ("tofu",),
            "open-unlearning's TOFU evaluation: its chat layout, label span, pad=EOS attention mask, "
            "greedy 200 new tokens, decoding and metric set",
            {"template": {"name": "open-unlearning", "chat": True, "system": OU_SYSTEM_PROMPT, "append_eos": True,
                          "date_string": OU_DATE_STRING},
             "encoding": {"layout": "chat_turn", "mask_pad_tokens": True, "clean_up_spaces": True, "strip": True},
             "max_new_tokens": 200, "rouge_reference": "decoded", "privleak_reference_auc": 0.5, "mia_k": 0.4},
            "locuslab/open-unlearning d3d7cf9: configs/eval/tofu.yaml, src/data/utils.py, src/evals/metrics/"),
    Profile("tofu", ("tofu",),
            "locuslab/tofu's original layout: family template (default qa), prompt tokens counted and masked, "
            "one EOS label, generation up to 200 tokens in total",
            {"template": {"name": "qa", "prefix": "Question: ", "suffix": "\nAnswer: ", "append_eos": True},
             "encoding": {"layout": "prompt_count"}, "max_length": 200},
            "locuslab/tofu: data_module.py convert_raw_data_to_model_format, config/eval_everything.yaml"),
)}

#: settings keys holding generation lengths, per protocol
_LENGTH_KEYS = {"tofu": ("max_new_tokens",), "muse": ("verbmem_max_new_tokens", "knowmem_max_new_tokens")}
#: protocols whose prompts go through a (chat) template, so a system prompt means something
_CHAT_PROTOCOLS = ("tofu",)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, list(PROFILES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown scoring profile {name!r}{hint} (profiles: {', '.join(PROFILES)})")
    return PROFILES[name]


def profiles_for(task: TaskSpec) -> list[str]:
    return [p.name for p in PROFILES.values() if task.protocol in p.protocols]


def apply_options(task: TaskSpec, *, profile: str | None = None, system_prompt: str | None = None,
                  max_new_tokens: int | None = None, limit: int | None = None) -> TaskSpec:
    """``task`` with a profile and scoring options applied to its settings (checked, one-line errors)."""
    settings = dict(task.settings)
    if profile is not None:
        prof = get_profile(profile)
        if task.modality != "llm" or task.protocol not in prof.protocols:
            where = f"{task.modality} task" if task.modality != "llm" else f"{task.protocol} task"
            raise UserError(f"scoring profile {profile!r} applies to {', '.join(prof.protocols)} tasks; "
                            f"{task.name} is a {where}")
        if prof.name != "default":
            settings.update(prof.settings)
            settings["profile"] = prof.name
    if system_prompt is not None:
        if task.protocol not in _CHAT_PROTOCOLS:
            raise UserError(f"--system-prompt applies to chat-templated tasks ({', '.join(_CHAT_PROTOCOLS)}); "
                            f"{task.name} is scored on raw prompts")
        tpl = settings.get("template")
        if isinstance(tpl, dict) and not tpl.get("chat"):
            raise UserError(f"--system-prompt needs a chat template; profile {settings.get('profile')!r} uses "
                            f"the {tpl.get('name')!r} template")
        settings["system_prompt"] = system_prompt
        if isinstance(tpl, dict):
            settings["template"] = {**tpl, "system": system_prompt}
    if max_new_tokens is not None:
        keys = _LENGTH_KEYS.get(task.protocol)
        if not keys:
            raise UserError(f"--max-new-tokens: {task.name} does not generate text")
        if int(max_new_tokens) < 1:
            raise UserError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
        for k in keys:
            settings[k] = int(max_new_tokens)
        settings.pop("max_length", None)
    if limit is not None:
        if task.modality != "llm":
            raise UserError(f"--limit applies to LLM tasks; {task.name} is a {task.modality} task")
        if int(limit) < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        settings["limit"] = int(limit)
    return task if settings == dict(task.settings) else task.replace(settings=settings)


def limited(rows: list, task: TaskSpec) -> list:
    """The first ``settings['limit']`` rows (all when no limit is set)."""
    n = task.settings.get("limit")
    return rows[: int(n)] if n else rows
