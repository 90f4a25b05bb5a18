"""unlearnbench.tasks."""
