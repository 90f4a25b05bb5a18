"""unlearnbench.tasks: task families (real benchmarks and embedded worlds)."""

from unlearnbench.tasks import tofu, tofu_ingest, tofu_protocol  # noqa: F401
