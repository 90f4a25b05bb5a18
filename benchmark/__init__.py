"""unlearnbench: one harness to score machine unlearning across LLMs, diffusion models and classifiers."""

__version__ = "0.1.0"

from unlearnbench.errors import UserError  # noqa: E402
from unlearnbench.spec import TaskSpec  # noqa: E402

__all__ = ["UserError", "TaskSpec", "__version__"]
