"""How a (question, answer) pair becomes scored tokens, and how generated tokens become text.

A scoring profile (``unlearnbench.profiles``) fixes three things that move TOFU numbers by
several percent, so each is a named, recorded choice (``Encoding``):

``layout`` -- which tokens are scored:

* ``offsets`` (this suite's default): ``prompt + answer`` tokenised in one piece; the tokens
  overlapping the answer's characters are scored, plus one EOS when the template appends it.
* ``chat_turn`` (open-unlearning, ``src/data/utils.py`` ``preprocess_chat_instance``): the
  chat template renders the whole conversation *with* the assistant turn; every token after
  the generation prompt is scored (for SmolLM2: ``{answer}<|im_end|>\\n``), plus one EOS
  appended when the last token is not EOS -- 3 tokens after the answer.
* ``prompt_count`` (locuslab/tofu, ``data_module.py`` ``convert_raw_data_to_model_format``):
  ``prompt + answer`` tokenised with special tokens; the first ``len(tokenize(prompt))``
  tokens are masked (so a token straddling the boundary is not scored), then one EOS label.

``mask_pad_tokens`` -- the attention mask. open-unlearning's collator sets
``attention_mask = input_ids != pad_token_id``; with pad = EOS (SmolLM2, Llama-3 set-ups) that
hides every EOS *inside* the sequence from attention as well (open-unlearning issue #128).
Positions stay the token's index in its own sequence when scoring (transformers' default
without ``position_ids``) and count only attended tokens when generating (``generate``
derives them from the mask's cumulative sum) -- both reproduced here.

``decode`` -- how generated ids become text: special tokens skipped; with
``clean_up_spaces`` the transformers-4 clean-up (``" ." -> "."``, ``" n't" -> "n't"`` ...,
which transformers 5 no longer applies to BPE tokenizers) and ``strip``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from unlearnbench.errors import UserError

LAYOUTS = ("offsets", "chat_turn", "prompt_count")

# transformers 4.x ``PreTrainedTokenizerBase.clean_up_tokenization`` rules, in their order
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


@dataclass(frozen=True)
class Encoding:
    layout: str = "offsets"
    mask_pad_tokens: bool = False
    clean_up_spaces: bool = False
    strip: bool = False

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise UserError(f"unknown scoring layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")

    def to_dict(self) -> dict:
        return asdict(self)


class Prompt(str):
    """A rendered prompt that remembers its question (the ``chat_turn`` layout re-renders the
    conversation with the answer as an assistant turn)."""

    question: str | None = None

    def __new__(cls, text: str, question: str | None = None):
        obj = super().__new__(cls, text)
        obj.question = question
        return obj

    def __reduce__(self):
        return (Prompt, (str(self), self.question))


def clean_up_spaces(text: str) -> str:
    for a, b in _CLEANUP:
        text = text.replace(a, b)
    return text


def decode(tokenizer, ids, enc: Encoding) -> str:
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    if enc.clean_up_spaces:
        text = clean_up_spaces(text)
    return text.strip() if enc.strip else text


def _chat_ids(tokenizer, template, question: str, answer: str) -> tuple[list[int], int]:
    msgs = template.messages(question)
    kw = template.chat_kwargs()
    full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": answer}], tokenize=False, **kw)
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)
    ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
    return ids, len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def encode(tokenizer, template, enc: Encoding, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of the scored sequence and its labels (-100 where not scored)."""
    eos = tokenizer.eos_token_id
    if enc.layout == "chat_turn":
        question = getattr(prompt, "question", None)
        if question is None or not template.chat:
            raise UserError("the chat_turn layout needs a chat template and prompts rendered by the model")
        ids, n_prompt = _chat_ids(tokenizer, template, question, answer)
        if ids[-1] != eos:
            ids.append(eos)
        labels = [-100] * n_prompt + ids[n_prompt:]
    elif enc.layout == "prompt_count":
        special = not template.chat
        ids = list(tokenizer(prompt + template.answer_prefix + answer, add_special_tokens=special)["input_ids"])
        n_prompt = len(tokenizer(prompt, add_special_tokens=special)["input_ids"])
        labels = [-100] * n_prompt + ids[n_prompt:]
        if template.append_eos and eos is not None:
            ids.append(eos)
            labels.append(eos)
    else:
        ids, labels = _offsets(tokenizer, template, prompt, answer)
    if all(lab == -100 for lab in labels):
        raise UserError(f"answer {answer!r} produced no tokens to score")
    return ids, labels


def _offsets(tokenizer, template, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    text = prompt + template.answer_prefix + answer
    special = not template.chat
    if getattr(tokenizer, "is_fast", False):
        e = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True, return_special_tokens_mask=True)
        cut = len(prompt)
        ids = list(e["input_ids"])
        labels = [t if (end > cut and not sp) else -100
                  for t, (_, end), sp in zip(ids, e["offset_mapping"], e["special_tokens_mask"])]
    else:  # slow tokenizer: count the prompt's tokens, as TOFU does
        ids = list(tokenizer(text, add_special_tokens=special)["input_ids"])
        n_prompt = len(tokenizer(prompt, add_special_tokens=special)["input_ids"])
        labels = [-100] * n_prompt + ids[n_prompt:]
    eos = tokenizer.eos_token_id
    if template.append_eos and eos is not None:
        if not ids or ids[-1] != eos or labels[-1] == -100:
            ids.append(eos)
            labels.append(eos)
    return ids, labels


def key_mask(ids: list[int], enc: Encoding, pad_id: int | None) -> list[int]:
    """1 for tokens other tokens may attend to (all, or all but pad-id tokens under ``mask_pad_tokens``)."""
    if enc.mask_pad_tokens and pad_id is not None:
        return [int(t != pad_id) for t in ids]
    return [1] * len(ids)


def scored_text(tokenizer, template, enc: Encoding, prompt: str, answer: str) -> str:
    """The scored tokens decoded without special tokens (open-unlearning's zlib text)."""
    ids, labels = encode(tokenizer, template, enc, prompt, answer)
    return tokenizer.decode([t for t in labels if t != -100], skip_special_tokens=True)


def reference_text(tokenizer, template, enc: Encoding, prompt: str, answer: str) -> str:
    """The answer as a ROUGE reference, the way the profile's tool recovers it.

    ``chat_turn`` (open-unlearning ``eval_text_similarity``): the whole conversation decoded
    without special tokens, minus the decoded prompt, stripped (clean-up as in ``decode``).
    Other layouts: the answer itself.
    """
    if enc.layout != "chat_turn":
        return answer
    question = getattr(prompt, "question", None)
    ids, n_prompt = _chat_ids(tokenizer, template, question, answer)
    full = tokenizer.decode(ids, skip_special_tokens=True)
    head = tokenizer.decode(ids[:n_prompt], skip_special_tokens=True)
    if enc.clean_up_spaces:
        full, head = clean_up_spaces(full), clean_up_spaces(head)
    return full.replace(head, "").strip()
