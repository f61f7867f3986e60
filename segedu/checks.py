"""Argument checks shared by the library: one wording for every "must be an integer" error.

``True`` is an ``int`` in Python, but nobody means ``epochs=True``: these checks refuse bools.
NumPy integers are accepted (a size read from an array is still a size) and returned as ``int``.

A leaf module: it imports nothing else from segedu.
"""

from __future__ import annotations

import numbers

__all__ = ["is_int", "check_positive_int", "check_int_at_least"]


def is_int(value) -> bool:
    """An integer (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value, *, or_none: bool = False, note: str = ""):
    """``value`` as an ``int`` if it is one >= 1 (or ``None`` when ``or_none``), else a ValueError
    "NAME must be a positive integer[NOTE][ or None], got VALUE"."""
    if or_none and value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer{note}{' or None' if or_none else ''}, got {value!r}")
    return int(value)


def check_int_at_least(name: str, value, minimum: int) -> int:
    """``value`` as an ``int`` if it is one >= ``minimum``, else a ValueError
    "NAME must be an integer >= MINIMUM, got VALUE"."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
