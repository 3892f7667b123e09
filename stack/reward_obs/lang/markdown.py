"""Headings and anchors of the Markdown runbooks, with GitHub's slug rules."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str
    line: int


def headings(markdown: str) -> list[Heading]:
    """Headings outside code fences, with duplicate slugs numbered as GitHub does."""
    found: list[Heading] = []
    seen: dict[str, int] = {}
    in_fence = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchor = slug if count == 0 else f"{slug}-{count}"
        found.append(Heading(len(match.group(1)), match.group(2), anchor, number))
    return found


def anchors(path: Path) -> set[str]:
    return {h.anchor for h in headings(path.read_text(encoding="utf-8"))}
