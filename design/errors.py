"""The one exception type Valley raises for bad user input."""

from __future__ import annotations

from data.messages import SHOWN_CHARS, shown

__all__ = ["SHOWN_CHARS", "InputError", "shown"]


class InputError(ValueError):
    """Bad user input: a config, a table or a request that cannot be used as given.

    The message is one line meant for the user: it names where the problem is (file, row,
    column or field), what was found, and what to do about it.
    """
