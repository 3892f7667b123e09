"""Reading a definition's bytes as text: UTF-8 only, and a clear error naming the byte
where it stops being UTF-8 (never a traceback)."""
from __future__ import annotations

from pathlib import Path

from reward_obs.model.errors import DefinitionError, Problem


def decode_utf8(data: bytes) -> str:
    """The text of `data`; ValueError('not UTF-8 at byte N') otherwise (N counts from 0)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from None


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
