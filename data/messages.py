"""How a message quotes a value from the user's input: short, and as plain Python."""

from __future__ import annotations

SHOWN_CHARS = 60  # a value quoted in a message is cut to about this many characters


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as a message quotes it: its repr as plain Python (no `np.float64(...)`), cut to `limit` characters.

    Example:
        >>> shown("x" * 100, limit=10)
        "'xxxxxxxx... (100 characters)"
    """
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    try:
        text = repr(value)
    except ValueError:  # an integer of more than 4,300 digits inside a container
        return f"a {type(value).__name__} too long to show"
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters shown in all"
    return f"{text[: limit - 1]}... ({size})"
