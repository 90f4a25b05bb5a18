"""Prompt templates per model family, recorded by name and content in every result.

TOFU formats each question with a per-family wrapper (``config/model_config.yaml`` of
locuslab/tofu): Phi-1.5 uses ``"Question: {q}\\nAnswer: "``, Llama-2-chat uses
``"[INST] {q} [/INST]"``. Chat models with a tokenizer chat template use it with a
generation prompt. The loss is taken over the answer tokens that follow the prompt, plus
one end-of-sequence token when ``append_eos`` is set (TOFU appends EOS to the labels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from unlearnbench.errors import UserError


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    prefix: str = ""
    suffix: str = ""
    chat: bool = False  # use the tokenizer's chat template
    system: str | None = None
    append_eos: bool = True
    answer_prefix: str = ""  # text glued in front of every answer (e.g. a space)
    date_string: str | None = None  # passed to chat templates that print a date (Llama-3); open-unlearning sets one

    def chat_kwargs(self) -> dict:
        return {"date_string": self.date_string} if self.date_string is not None else {}

    def messages(self, question: str) -> list[dict]:
        """The chat messages of a question (system prompt first when set)."""
        return ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": question}]

    def render(self, question: str, tokenizer=None) -> str:
        from unlearnbench.lm_encoding import Prompt

        if not self.chat:
            return Prompt(f"{self.prefix}{question}{self.suffix}", question)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise UserError(f"template {self.name!r} needs a tokenizer with a chat template")
        text = tokenizer.apply_chat_template(self.messages(question), tokenize=False, add_generation_prompt=True,
                                             **self.chat_kwargs())
        return Prompt(text, question)

    def to_dict(self) -> dict:
        return asdict(self)


TEMPLATES: dict[str, PromptTemplate] = {
    # TOFU's Phi-1.5 format; also the default for base models and the embedded worlds.
    "qa": PromptTemplate("qa", prefix="Question: ", suffix="\nAnswer: "),
    # TOFU's Llama-2-chat format.
    "llama2": PromptTemplate("llama2", prefix="[INST] ", suffix=" [/INST]", answer_prefix=" "),
    # The tokenizer's own chat template (SmolLM2-Instruct, Llama-3-Instruct, ...).
    "chat": PromptTemplate("chat", chat=True),
    # Raw continuation: the prompt is used as given (MUSE VerbMem prefixes, MCQ prompts).
    "raw": PromptTemplate("raw", append_eos=False),
}


def get_template(name: str | None, tokenizer=None) -> PromptTemplate:
    """``None``/``"auto"``: the chat template when the tokenizer has one, else ``qa``."""
    if name in (None, "auto"):
        return TEMPLATES["chat"] if getattr(tokenizer, "chat_template", None) else TEMPLATES["qa"]
    if name not in TEMPLATES:
        import difflib

        close = difflib.get_close_matches(name, list(TEMPLATES), n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; choose from {', '.join(TEMPLATES)}"
        raise UserError(f"unknown prompt template {name!r}{hint}")
    return TEMPLATES[name]
