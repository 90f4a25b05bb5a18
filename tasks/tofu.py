"""The real TOFU benchmark (``locuslab/TOFU`` on the Hugging Face hub).

``tofu/forget01|05|10``: forget 1 / 5 / 10 % of the 200 fictitious authors. Evaluation uses
the ``*_perturbed`` configs (paraphrased and perturbed answers), the 400-question
``retain_perturbed`` set, ``real_authors_perturbed`` and ``world_facts_perturbed``; training
uses ``forgetXX`` and the complementary ``retainYY``. Held-out authors (``holdoutXX``) are
the non-members for membership inference. Prompts follow the model's family template
(``--template qa`` for TOFU's Phi-1.5 format, ``llama2`` for Llama-2-chat).
"""

from __future__ import annotations

from unlearnbench.registry import TASKS
from unlearnbench.spec import TaskSpec

TOFU_METRICS = ("forget_quality", "model_utility", "probability", "rouge_l_recall", "truth_ratio",
            # open-unlearning's TOFU set (tasks/tofu_extras.py)
            "rouge1_recall", "rouge_l_recall_paraphrased", "rouge_l_recall_perturbed", "truth_ratio_prob_mean",
            "extraction_strength", "exact_memorization", "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus",
            "privleak")

TOFU_BASE = TaskSpec(
    name="tofu/forget10",
    modality="llm",
    protocol="tofu",
    version=1,
    source={"kind": "hub", "path": "locuslab/TOFU", "split": "train"},
    splits={},
    settings={"max_new_tokens": 128},
    metrics=TOFU_METRICS,
    references=("retain",),
    rank_by="forget_quality",
    description="TOFU: forget fictitious authors; forget quality vs the retain model, model utility",
)

for pct, retain in (("01", "99"), ("05", "95"), ("10", "90")):
    TASKS.register(
        f"tofu/forget{pct}",
        TOFU_BASE.replace(
            name=f"tofu/forget{pct}",
            splits={
                "forget": f"forget{pct}_perturbed",
                "retain": "retain_perturbed",
                "real_authors": "real_authors_perturbed",
                "world_facts": "world_facts_perturbed",
                "holdout": f"holdout{pct}",
                "forget_train": f"forget{pct}",
                "retain_train": f"retain{retain}",
            },
            description=f"TOFU forget{pct}: forget {int(pct)}% of the fictitious authors",
        ),
        modality="llm",
        version=1,
        description=f"TOFU forget{pct} (locuslab/TOFU)",
    )
