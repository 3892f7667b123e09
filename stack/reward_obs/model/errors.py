"""One error type for every way a definition or a config can be wrong."""
from __future__ import annotations

from dataclasses import dataclass

# A message names what is wrong; it never echoes a whole value (an alias bomb expands to
# megabytes, and a long string would flood the terminal), so each part is cut here.
MAX_FIELD = 200
MAX_MESSAGE = 400


def bounded(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, order=True)
class Problem:
    """A single finding: which file, where inside it, and what is wrong."""

    file: str
    field: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", bounded(self.field, MAX_FIELD))
        object.__setattr__(self, "message", bounded(self.message, MAX_MESSAGE))

    def __str__(self) -> str:
        return f"{self.file}:{self.field}: {self.message}"


class DefinitionError(Exception):
    """Raised with every problem found, so one run reports them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class ProblemCollector:
    """Collects problems while a loader keeps going; raises once at the end."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, field: str, message: str) -> None:
        self.problems.append(Problem(file, field, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DefinitionError(self.problems)
