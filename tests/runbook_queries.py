"""The fenced PromQL queries of a runbook, with what each should return (the live test
runs them against a healthy and a faulty Prometheus)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reward_obs.lang.markdown import sections

# The line before a query says the query must come back empty on a healthy system.
_EXPECT_EMPTY = re.compile(r"(?:must|should) (?:return nothing|be empty)|\breturns nothing\b", re.IGNORECASE)


@dataclass(frozen=True)
class RunbookQuery:
    file: str
    anchor: str  # the `## ` section
    part: str  # the `### ` part
    index: int  # 1-based, among the section's PromQL blocks
    expr: str
    expect_empty: bool  # the runbook says it returns nothing when all is well

    def __str__(self) -> str:
        return f"{self.file}#{self.anchor} {self.part} promql {self.index}: {self.expr}"


def promql_queries(path: Path) -> list[RunbookQuery]:
    """Every fenced PromQL query of a runbook, with where it is and what it should return."""
    out = []
    for section in sections(path):
        index = 0
        for part, body in section.parts.items():
            before = ""
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                line = lines[i]
                if line.startswith("```"):
                    lang = line[3:].strip()
                    end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
                    if lang == "promql":
                        index += 1
                        out.append(RunbookQuery(path.name, section.anchor, part, index, "\n".join(lines[i + 1:end]).strip(),
                                                bool(_EXPECT_EMPTY.search(before))))
                    i = end + 1
                    continue
                if line.strip():
                    before = line
                i += 1
    return out
