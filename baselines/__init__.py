"""unlearnbench.baselines."""
