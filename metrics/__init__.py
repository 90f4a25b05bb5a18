"""unlearnbench.metrics: pure metric functions over per-sample arrays (metric cards in docstrings)."""

from unlearnbench.metrics.tofu import (  # noqa: F401
    forget_quality, model_utility, normalized_probability, probability, rouge_l_recall, truth_ratio,
    truth_ratio_forget_stat, truth_ratio_retain_stat,
)
from unlearnbench.metrics import mcq, mia, muse  # noqa: F401,E402
from unlearnbench.metrics import diffusion  # noqa: F401,E402
from unlearnbench.metrics import classification  # noqa: F401,E402
