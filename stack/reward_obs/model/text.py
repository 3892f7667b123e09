"""Reading a definition's bytes as text: UTF-8 only, and a clear error naming the byte
where it stops being UTF-8 (never a traceback)."""
from __future__ import annotations

import re
from pathlib import Path

from reward_obs.model.errors import DefinitionError, Problem

# C0 controls but tab and line feed, DEL, C1 controls, the Unicode line/paragraph
# separators, the zero-width and bidirectional formatting characters (they reorder how a
# URL or a label reads: "Trojan Source", CVE-2021-42574) and the byte order mark.
FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def decode_utf8(data: bytes) -> str:
    """The text of `data`; ValueError('not UTF-8 at byte N') otherwise (N counts from 0),
    or ValueError naming the line of a control or formatting character."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from None
    bad = FORBIDDEN_CHARS.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise ValueError(f"line {line} contains the control or formatting character U+{ord(bad.group()):04X}")
    return text


def read_utf8(path: Path, rel: str) -> str:
    """The file's text, or DefinitionError `rel:(file): not UTF-8 at byte N` / cannot read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DefinitionError([Problem(rel, "(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        return decode_utf8(data)
    except ValueError as exc:
        raise DefinitionError([Problem(rel, "(file)", str(exc))]) from None
