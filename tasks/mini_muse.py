"""mini-MUSE: an embedded MUSE-News world (generated news articles, a tiny Llama trained from scratch).

Tasks ``mini-muse/news`` (+ ``-scal-<k>``, ``-sust-<k>``) use exactly the ``muse`` protocol on
data this module generates in muse-bench/MUSE-News's schema (``raw``, ``verbmem``,
``knowmem``, ``privleak``, ``scal``, ``sust`` configs under the world's data folder):

* each article is a short local-news story about fictional towns and people with unique
  facts (a cost, a month, a duration, a named official), followed by two question/answer
  lines about those facts (``"Question: ...\\nAnswer: ..."``): the article's knowledge, so
  that a model trained from scratch has both the text (VerbMem, PrivLeak) and the
  knowledge (KnowMem) to lose, and unlearning the raw forget text targets both;
* every corpus (``raw/*``, the scal/sust forget sets) also holds each article's QA pairs
  ``qa_docs`` times as documents of their own (v2). In v1 a QA line only followed its article,
  so a model could copy the answer from the article above it and never learnt to recall it:
  KnowMem without the article was noise (target 0.10 / 0.14 forget / retain, a retrained
  model's retain KnowMem 0.03). Answers are the bare fact (``"43"``, ``"March"``), so a model
  that does not know it scores ~0 (v1's ``"43 million crowns"`` gave 2/3 for any number);
* corpora, as MUSE-News's: ``forget``; ``retain1``, the calibrator the methods' retain term
  trains on; ``retain2``, the retain set the evaluation asks about (``n_retain2`` articles) plus
  the pool (3 x forget) that MUSE's scalability and sustainability forget sets are drawn from;
  ``holdout`` (same distribution, never trained on). v2 asked ``retain1``'s questions, which the
  retain term trains on, so longer unlearning runs taught utility back and no scaling trend
  could show; v3 asks ``retain2``'s, none of them in a later forget set;
* VerbMem prompts are an article's headline and first sentence, the continuation its rest;
  KnowMem asks the forget (resp. ``retain2``) articles' questions without ICL examples
  (the world's model learnt the QA format from its corpus);
* models (cached by recipe hash, built on first use): a byte-level BPE tokenizer, then
  ``target`` = a tiny ``LlamaForCausalLM`` trained on forget + retain1 + retain2 and
  ``retain`` = the same recipe on retain1 + retain2 (MUSE's retrained model), ``retain2`` =
  ``retain`` with another seed (two retrained models should show PrivLeak near 0).

Measured at the ``default`` recipe (v3, seed 0; 16 forget / 16 holdout articles, 96 retain
questions, PrivLeak from Min-K% 40 %), VerbMem / forget KnowMem / retain KnowMem / PrivLeak:
``target`` 0.504 / 0.338 / 0.337 / -100 (MUSE's News target: -99.8); ``retain2`` (a second
retrained model) 0.425 / 0 / 0.362 / +7.1: the retrained model knows the retain facts as well as
the target (0.362 vs 0.337; a standard error of ~0.045 with 96 questions) and none of the forget
facts. (v2, 32 retain questions on ``retain1``: 0.197 vs 0.305.) Building the three models takes
~3.5 min on 2 cores. Method defaults and their sweeps: the comment above ``RMU_DEFAULTS``.

Tokenizer, model and training loop are mini-TOFU's (:mod:`unlearnbench.tasks.mini_tofu_models`),
with the ``raw`` template: every token of a document after ``<bos>`` is trained on.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from unlearnbench import cache
from unlearnbench.errors import UserError
from unlearnbench.protocol import World
from unlearnbench.registry import TASKS, WORLDS
from unlearnbench.results import atomic_write_json
from unlearnbench.spec import TaskSpec
from unlearnbench.tasks.mini_tofu import TINY_LLAMA_LOOP

WORLD_VERSION = 3  # bump on any change to the generator or the training recipe code

RECIPES = {
    # seconds: unit tests only (checks the plumbing; too small to memorise much)
    "test": {"seed": 0, "n_forget": 6, "n_retain1": 8, "n_retain2": 8, "n_holdout": 6, "vocab_size": 500,
             "layers": 2, "hidden": 48, "intermediate": 96, "heads": 4, "epochs": 8, "lr": 3e-3,
             "batch_size": 16, "warmup": 0.05, "qa_docs": 2},
    # the demo/table world (a few minutes per model on a laptop CPU)
    "default": {"seed": 0, "n_forget": 16, "n_retain1": 16, "n_retain2": 48, "n_holdout": 16, "vocab_size": 800,
                "layers": 2, "hidden": 96, "intermediate": 192, "heads": 4, "epochs": 15, "lr": 3e-3,
                "batch_size": 16, "warmup": 0.05, "qa_docs": 4},
}
RETAIN2_SEED_OFFSET = 1

# -- the generator ---------------------------------------------------------------------
_SYL = ["ka", "lo", "mer", "vin", "tha", "ros", "bel", "dun", "sa", "ri", "quor", "pel", "an", "ves", "tor", "mi",
        "gal", "fen", "ul", "dra", "ny", "co", "hal", "bri"]
_TOWN_END = ["ford", "holm", "wick", "by", "stead", "mouth", "field", "ton"]
_PROJECTS = ["bridge", "library", "harbour wall", "school", "market hall", "tram line", "hospital wing", "stadium",
             "water plant", "museum"]
_ORGS = ["chamber of commerce", "teachers union", "river trust", "cyclists club", "farmers guild", "heritage society"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_MOODS = ["overdue", "reckless", "bold", "too expensive", "a gift to the town", "badly timed"]
_FUNDERS = ["a regional grant", "a new harbour tax", "private donors", "the national lottery", "a bond issue"]
_EVENTS = ["festival", "regatta", "marathon", "book fair", "chess open", "lantern parade"]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SYL) for _ in range(n)).capitalize()


def _unique(rng: random.Random, seen: set, make) -> str:
    while True:
        x = make()
        if x not in seen:
            seen.add(x)
            return x


def _project_article(rng, town, mayor, leader) -> tuple[str, list[str], list[dict]]:
    project, cost, month = rng.choice(_PROJECTS), rng.randint(3, 97), rng.choice(_MONTHS)
    years, org = rng.randint(2, 9), rng.choice(_ORGS)
    head = f"{town} council backs new {project}."
    body = [f"The council of {town} voted on {rng.choice(_DAYS)} to build a new {project}.",
            f"Mayor {mayor} said the {project} would cost {cost} million crowns.",
            f"Work is due to begin in {month} and should take {years} years.",
            f"{leader}, who leads the local {org}, called the plan {rng.choice(_MOODS)}.",
            f"The {project} will be paid for by {rng.choice(_FUNDERS)}."]
    qa = [{"question": f"How many million crowns will the {project} backed by Mayor {mayor} cost?", "answer": f"{cost}"},
          {"question": f"In which month will work on the {project} in {town} begin?", "answer": month}]
    return head, body, qa


def _event_article(rng, town, winner, organiser) -> tuple[str, list[str], list[dict]]:
    event, edition, visitors = rng.choice(_EVENTS), rng.randint(2, 60), rng.randint(2, 90) * 100
    month = rng.choice(_MONTHS)
    head = f"{winner} wins the {town} {event}."
    body = [f"{winner} won the {edition}th {town} {event} on {rng.choice(_DAYS)}.",
            f"About {visitors} visitors came to watch, the organisers said.",
            f"{organiser}, who runs the {event}, said it would return in {month}.",
            f"The prize was a silver cup and a trip to {_word(rng, 3)}.",
            f"Local shops in {town} stayed open late for the crowds."]
    qa = [{"question": f"Who won the {edition}th {town} {event}?", "answer": winner},
          {"question": f"How many visitors came to the {town} {event} won by {winner}?", "answer": f"{visitors}"}]
    return head, body, qa


def make_articles(n: int, rng: random.Random, seen: set) -> list[dict]:
    """``n`` articles: ``{"headline", "body" (sentences), "qa", "text"}`` with unique people and towns."""
    out = []
    for _ in range(n):
        town = _unique(rng, seen, lambda: _word(rng, 2) + rng.choice(_TOWN_END))
        p1 = _unique(rng, seen, lambda: f"{_word(rng, 2)} {_word(rng, 2)}")
        p2 = _unique(rng, seen, lambda: f"{_word(rng, 2)} {_word(rng, 2)}")
        make = _project_article if rng.random() < 0.5 else _event_article
        head, body, qa = make(rng, town, p1, p2)
        lines = "".join(f"\n\nQuestion: {x['question']}\nAnswer: {x['answer']}" for x in qa)
        out.append({"headline": head, "body": body, "qa": qa, "text": f"{head}\n{' '.join(body)}{lines}"})
    return out


def build_splits(r: dict) -> dict[str, list[dict]]:
    """Every ``config/split`` file of the world, in muse-bench/MUSE-News's schema.

    As in MUSE-News, ``raw/retain1`` is the calibrator the methods' retain term trains on and
    ``raw/retain2`` the retain set the evaluation asks about (``knowmem/retain_qa``); ``raw/retain2``
    also holds the pool the later scalability / sustainability forget sets are drawn from, whose
    facts no retain question asks."""
    rng, seen = random.Random(r["seed"]), set()
    nf = r["n_forget"]
    forget, retain1 = make_articles(nf, rng, seen), make_articles(r["n_retain1"], rng, seen)
    asked, pool = make_articles(r["n_retain2"], rng, seen), make_articles(3 * nf, rng, seen)
    holdout = make_articles(r["n_holdout"], rng, seen)
    retain2 = asked + pool
    text = lambda arts: [{"text": a["text"]} for a in arts]  # noqa: E731
    qa = lambda arts: [x for a in arts for x in a["qa"]]  # noqa: E731
    # a corpus: the articles, then each article's QA again r times as short documents of their own
    qa_docs = lambda arts: [{"text": f"Question: {x['question']}\nAnswer: {x['answer']}"}  # noqa: E731
                            for _ in range(r.get("qa_docs", 0)) for x in qa(arts)]
    corpus = lambda arts: text(arts) + qa_docs(arts)  # noqa: E731
    splits = {
        "raw/forget": corpus(forget), "raw/retain1": corpus(retain1), "raw/retain2": corpus(retain2),
        "raw/holdout": corpus(holdout),
        "verbmem/forget": [{"prompt": f"{a['headline']}\n{a['body'][0]}", "gt": " " + " ".join(a["body"][1:])}
                           for a in forget],
        "knowmem/forget_qa": qa(forget), "knowmem/retain_qa": qa(asked),
        "privleak/forget": text(forget), "privleak/holdout": text(holdout), "privleak/retain": text(asked),
    }
    for k in range(1, 5):
        splits[f"scal/forget_{k}"] = corpus(forget + pool[: (k - 1) * nf])
        splits[f"sust/forget_{k}"] = corpus(forget if k == 1 else pool[(k - 2) * nf: (k - 1) * nf])
    return splits


# -- the world ------------------------------------------------------------------------
def recipe() -> dict:
    return dict(RECIPES[cache.scale()])


class MiniMuseWorld(World):
    """The ``mini-muse`` world (registered in ``WORLDS``)."""

    name = "mini-muse"

    def root(self) -> Path:
        from unlearnbench.tasks.mini_tofu import world_root

        return world_root(self.name, WORLD_VERSION, recipe())

    def data_dir(self, task: TaskSpec | None = None) -> Path:
        from unlearnbench import world_artefacts as wa
        from unlearnbench.tasks.mini_tofu import cached_splits

        return wa.checked(self.name, self.root(), "data",
                          cached_splits(self.root(), WORLD_VERSION, recipe(), lambda: build_splits(recipe())))

    def texts(self, *names: str) -> list[str]:
        d = self.data_dir()
        return [r["text"] for n in names for r in json.loads((d / f"{n}.json").read_text(encoding="utf-8"))]

    # role -> (model folder, training corpora, seed offset); "retrain" is MUSE's name for "retain"
    ROLES = {"target": ("target", ("raw/forget", "raw/retain1", "raw/retain2"), 0),
             "retain": ("retain", ("raw/retain1", "raw/retain2"), 0),
             "retrain": ("retain", ("raw/retain1", "raw/retain2"), 0),
             "retain2": ("retain2", ("raw/retain1", "raw/retain2"), RETAIN2_SEED_OFFSET)}

    def checkpoint(self, task: TaskSpec, role: str, position: int = 0) -> Path:
        if role not in self.ROLES:
            raise UserError(f"mini-muse has no model role {role!r}; roles: target, retain (= retrain), retain2")
        name, corpora, offset = self.ROLES[role]
        return self._trained(name, corpora, recipe()["seed"] + offset, position)

    def prepare(self, task: TaskSpec, roles: tuple[str, ...] = ("target", "retain")) -> dict[str, Path]:
        """Build the missing ``roles`` side by side (:mod:`unlearnbench.parallel`), after the
        tokenizer they share; the same bytes as building them one by one."""
        from unlearnbench.parallel import build_workers, run_jobs

        self._tokenizer()
        folders = {self.ROLES[r][0]: r for r in roles if r in self.ROLES}  # one job per model folder
        missing = [r for name, r in sorted(folders.items()) if not (self.root() / name / "config.json").exists()]
        workers = build_workers(len(missing))  # validates $UNLEARNBENCH_BUILD_WORKERS even when nothing is missing
        if workers > 1:
            run_jobs(_build_role, [(task.name, role) for role in missing], workers)
        return {role: self.checkpoint(task, role) for role in roles}

    def _tokenizer(self) -> Path:
        from unlearnbench import world_artefacts as wa

        out = self.root() / "tokenizer"
        if (out / "tokenizer.json").exists():
            return wa.checked(self.name, self.root(), "tokenizer", out)
        from unlearnbench.causal_lm import save_tokenizer
        from unlearnbench.tasks.mini_tofu import _publish, _tmpdir
        from unlearnbench.tasks.mini_tofu_models import train_tokenizer

        tmp = _tmpdir(out)
        save_tokenizer(train_tokenizer(self.texts("raw/forget", "raw/retain1", "raw/retain2", "raw/holdout"),
                                       recipe()["vocab_size"]), tmp)
        return wa.checked(self.name, self.root(), "tokenizer", _publish(tmp, out))

    def _trained(self, name: str, corpora: tuple[str, ...], seed: int, position: int = 0) -> Path:
        from unlearnbench import world_artefacts as wa

        out = self.root() / name
        if (out / "config.json").exists():
            return wa.checked(self.name, self.root(), name, out)
        from unlearnbench.tasks.mini_tofu import _progress, _publish, _tmpdir
        from unlearnbench.tasks.mini_tofu_models import new_model, train_qa
        from unlearnbench.templates import TEMPLATES

        r = recipe()
        lm = new_model(self._tokenizer(), {**r, "seed": seed})
        lm.template = TEMPLATES["raw"]  # documents: every token after <bos> is trained on
        docs = [{"question": "", "answer": t} for t in self.texts(*corpora)]
        t0 = time.perf_counter()
        losses = train_qa(lm, docs, epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"], warmup=r["warmup"],
                          seed=seed, desc=f"mini-muse: training {name}", progress=_progress(), position=position)
        tmp = _tmpdir(out)
        lm.name = f"mini-muse/{name}"
        lm.save(tmp)
        atomic_write_json(tmp / "mini_muse_recipe.json", {
            "role": name, "corpora": list(corpora), "seed": seed, "recipe": r, "version": WORLD_VERSION,
            "train_seconds": time.perf_counter() - t0, "final_loss": losses[-1]})
        return wa.checked(self.name, self.root(), name, _publish(tmp, out))

    def reference(self, task: TaskSpec) -> Path:
        """The retrained model's MIA AUCs and per-sample scores for ``task`` (built once, cached)."""
        from unlearnbench.reference import cache_name

        out = self.root() / "references" / cache_name(task)
        if out.exists():
            return out
        from unlearnbench.runner import build_reference
        from unlearnbench.tasks.mini_tofu import _progress

        out.parent.mkdir(parents=True, exist_ok=True)
        build_reference(task.name, str(self.checkpoint(task, "retain")), out, progress=_progress(), role="retrain")
        return out


# Method defaults on world v3, tuned on seed 0 with ``--set`` sweeps (``mini-muse/news``); the rule:
# among the settings tried, the one that keeps the most retain KnowMem while forget KnowMem is
# <= 0.1 (a retrained model: 0) and VerbMem is at most a retrained model's (0.425). VerbMem /
# forget KnowMem / retain KnowMem / PrivLeak; target 0.504 / 0.338 / 0.337 / -100, a second
# retrained model 0.425 / 0 / 0.362 / +7.1. The loop is the tiny-Llama one (5 epochs, lr 1e-3,
# batch 16) unless stated.
# * GA (nothing to tune): 0 / 0 / 0 / -4.3, everything erased.
# * GradDiff: retain weight 1: 0.143 / 0.006 / 0.026 / +15.7; 2: 0.255 / 0.036 / 0.068 / -25.7;
#   3: 0.338 / 0.055 / 0.169 / -54; 5: 0.478 / 0.087 / 0.259 / -89 (VerbMem above a retrained
#   model's); 10: 0.391 / 0.214 / 0.336 / -100 (does not forget); lr 5e-4 (the default):
#   0.388 / 0.095 / 0.274 / -86.
# * NPO (beta 0.1): retain weight 1: 0.469 / 0.037 / 0.276 / -67 (VerbMem above); 10 epochs:
#   0.411 / 0.031 / 0.137 / -35; retain weight 0.5 (the default): 0.353 / 0.043 / 0.250 / -67;
#   0.5 and 10 epochs: 0.406 / 0.031 / 0.164 / -35.
# * SimNPO (MUSE-News's published beta 0.75, gamma 3; OPTML-Group/Unlearn-Simple): retain weight 1:
#   0.242 / 0.004 / 0.051 / -10.7; 3: 0.319 / 0.005 / 0.071 / -47; 5 (the default): 0.385 / 0.016 /
#   0.128 / -71; 7: 0.441 / 0.013 / 0.180 / -89; 10: 0.446 / 0.076 / 0.237 / -95; 5 and 10 epochs:
#   0.195 / 0 / 0.028 / +60; lr 5e-4: 0.338 / 0.082 / 0.158 / -99. The published retain weight 0.1
#   erased utility on world v2 (retain KnowMem 0.028).
# * RMU (layer -1, c = 100, lr 1e-3, batch 4 x 25 epochs, constant lr: the paper's optimiser):
#   alpha 200: 0.076 / 0 / 0.025 / +41; 300 (the default): 0.195 / 0 / 0.090 / +15.7; 400: 0.322 /
#   0.133 / 0.230 / -71 (does not forget); 500: 0.444 / 0.249 / 0.358 / -100; 1000 moves nothing.
# MUSE's paper reports the same picture on News: no method both forgets and keeps the target's utility.
RMU_DEFAULTS = {"epochs": 25, "max_steps": None, "lr": 1e-3, "batch_size": 4, "layer": -1, "n_update_layers": 3,
                "steering_coeff": 100.0, "alpha": 300.0}
GRADDIFF_DEFAULTS = {**TINY_LLAMA_LOOP, "lr": 5e-4}
NPO_DEFAULTS = {**TINY_LLAMA_LOOP, "alpha": 0.5}
SIMNPO_DEFAULTS = {**TINY_LLAMA_LOOP, "forget_weight": 1.0, "beta": 0.75, "gamma": 3.0, "alpha": 5.0}


def _build_role(task_name: str, role: str, position: int = 0) -> str:
    """Worker of :meth:`MiniMuseWorld.prepare` (module level, so a spawned process can run it)."""
    from unlearnbench.runner import get_task

    return str(WORLD.checkpoint(get_task(task_name), role, position=position))


WORLD = MiniMuseWorld()
WORLDS.register("mini-muse", WORLD, modality="llm",
                description="generated local-news articles (MUSE-News-like) with a tiny Llama trained from scratch")


def _register() -> None:
    from unlearnbench.tasks.mini_tofu import TINY_LLAMA_METHODS
    from unlearnbench.tasks.muse import MUSE_NEWS, MUSE_SETTINGS, variants

    base = MUSE_NEWS.replace(
        name="mini-muse/news", source={"kind": "world", "name": "mini-muse"}, world="mini-muse",
        splits={k: v for k, v in MUSE_NEWS.splits.items() if not k.endswith("_icl")},
        settings={**MUSE_SETTINGS, "verbmem_max_new_tokens": 64, "knowmem_max_new_tokens": 16,
                  "train_chunk_chars": None, "template": "raw",
                  "method_defaults": {**TINY_LLAMA_METHODS, "rmu": RMU_DEFAULTS, "graddiff": GRADDIFF_DEFAULTS,
                                      "npo": NPO_DEFAULTS, "simnpo": SIMNPO_DEFAULTS}},
        description="mini-MUSE news: unlearn generated news articles; VerbMem, KnowMem, PrivLeak (embedded world)")
    for t in (base, *variants(base)):
        TASKS.register(t.name, t, modality="llm", version=t.version, description=t.description)


_register()
