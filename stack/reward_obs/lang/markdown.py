"""Headings and anchors of the Markdown runbooks, with GitHub's slug rules."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reward_obs.model.definitions import Section  # noqa: F401 (re-exported)

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


def anchors(markdown: str) -> set[str]:
    return {h.anchor for h in headings(markdown)}


def sections(path: Path) -> list[Section]:
    """The `## ` sections of a runbook with their `### ` parts."""
    return parse_sections(path.name, path.read_text(encoding="utf-8"))


def parse_sections(file: str, text: str) -> list[Section]:
    """The `## ` sections of a runbook's text (file: its name) with their `### ` parts."""
    lines = text.splitlines()
    marks = [h for h in headings(text) if h.level in (2, 3)]
    out: list[Section] = []
    for i, h in enumerate(marks):
        if h.level != 2:
            continue
        parts: dict[str, str] = {}
        section_end = len(lines)
        for j in range(i + 1, len(marks)):
            sub = marks[j]
            if sub.level == 2:
                section_end = sub.line - 1
                break
            end = marks[j + 1].line - 1 if j + 1 < len(marks) else len(lines)
            parts[sub.text] = "\n".join(lines[sub.line:end]).strip()
        body = "\n".join(lines[h.line - 1:section_end]).strip()
        out.append(Section(file, h.text, h.anchor, parts, body))
    return out


def parse_title_and_intro(stem: str, text: str) -> tuple[str, str]:
    """The `# ` title (default: stem) and the text before the first `## ` section."""
    first = next((h for h in headings(text) if h.level == 2), None)
    lines = text.splitlines()
    intro = "\n".join(lines[: first.line - 1] if first else lines)
    title = next((h.text for h in headings(text) if h.level == 1), stem)
    return title, intro.strip()
