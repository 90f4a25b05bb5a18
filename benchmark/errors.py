"""User-facing errors.

Anything a user can get wrong (a path, a name, a file format, a modality) raises
:class:`UserError`. The CLI prints its message as one line on stderr and exits with
code 2; it never shows a traceback for these. Library callers can catch it like any
other exception. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input, reported as one clear line."""

    exit_code = 2

    def __str__(self) -> str:  # keep the message on one line whatever was passed in
        return " ".join(str(a) for a in self.args).replace("\n", " ").strip()


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds (not ``assert``)."""
    if not condition:
        raise UserError(message)
