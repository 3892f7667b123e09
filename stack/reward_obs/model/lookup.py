"""Narrowing for look-ups the catalog has already validated."""
from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def required(value: T | None, what: str) -> T:
    """`value`, or a LookupError naming `what`. The catalog rejects a dangling reference
    (a rule's dashboard or panel, an SLO's contract) before a builder runs, so reaching
    the error means a caller skipped the catalog: say which look-up failed rather than
    fail later on an attribute of None."""
    if value is None:
        raise LookupError(f"{what} not found (the definitions were not validated by the catalog)")
    return value
