"""unlearnbench.leaderboard."""
