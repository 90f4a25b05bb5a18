"""unlearnbench.metrics."""
