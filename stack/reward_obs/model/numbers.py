"""Numbers as the definitions and runbooks write them."""
from __future__ import annotations


def format_number(value: float) -> str:
    """Shortest exact text of a threshold: 3, 0.1, 1e-06."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))
