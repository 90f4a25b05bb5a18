"""unlearnbench.leaderboard."""
from unlearnbench.leaderboard import schema  # noqa: F401,E402  (schemas + validator; light imports only)
