"""Failure causes, as the metrics contract marks them (contract/metrics.yaml, label
`cause`, `blame`): `$platform_causes` and `$player_causes` in an SLO query or an alert
expression become the regex alternation of the causes marked platform or player, so the
list is written once, in the contract, and a new cause lands on the right side of every
query that reads it."""
from __future__ import annotations

import re

from reward_obs.model.contract import MetricsContract

LABEL = "cause"
PLACEHOLDERS = {"platform_causes": "platform", "player_causes": "player"}
_PLACEHOLDER = re.compile(r"\$(" + "|".join(PLACEHOLDERS) + r")\b")


def alternation(contract: MetricsContract, party: str) -> str:
    """`a|b|c`: the causes blamed on `party`, for a `=~` matcher (names need no escaping:
    the contract's values are snake_case)."""
    return "|".join(contract.blamed(LABEL, party))


def expand(text: str, contract: MetricsContract) -> str:
    return _PLACEHOLDER.sub(lambda m: alternation(contract, PLACEHOLDERS[m.group(1)]), text)
