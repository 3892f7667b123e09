"""Canonical durations against literal Go model.Duration strings (tests/go_durations.py):
Grafana stores "1m", not "60s", and anything else shows a diff on every `pulumi up`."""
from __future__ import annotations

import pytest
import yaml

from reward_obs.builders import alerts as alert_builders
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.durations import canonical, format_duration, parse_duration

from conftest import unbind_runbook_numbers
from go_durations import GO_DURATION_STRINGS, go_seconds


@pytest.mark.parametrize("seconds, go", sorted(GO_DURATION_STRINGS.items()))
def test_format_duration_prints_what_go_prints(seconds, go):
    assert format_duration(seconds) == go


@pytest.mark.parametrize("seconds, go", sorted(GO_DURATION_STRINGS.items()))
def test_parse_duration_reads_go_strings(seconds, go):
    assert parse_duration(go) == seconds


@pytest.mark.parametrize("sent, stored", [
    ("60s", "1m"),
    ("90s", "1m30s"),
    ("300s", "5m"),
    ("120m", "2h"),
    ("3600s", "1h"),
    ("24h", "1d"),
    ("86400s", "1d"),
    ("7d", "1w"),
    ("168h", "1w"),
    ("604800s", "1w"),
    ("14d", "2w"),
    ("365d", "1y"),
    ("1h60m", "2h"),
    ("0m", "0s"),
])
def test_non_canonical_spellings_become_go_strings(sent, stored):
    assert go_seconds(sent) == go_seconds(stored)  # the table's own sanity: same value
    assert canonical(sent) == stored


def test_an_alert_for_written_in_seconds_is_built_in_go_form(repo_copy):
    """The whole path, definition file to Grafana rule: `for: 300s` is sent as "5m"."""
    path = repo_copy / "alert_rules" / "RewardClaimRejectionRateHigh.yaml"
    data = yaml.safe_load(path.read_text())
    data["for"] = "300s"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    unbind_runbook_numbers(repo_copy, "RewardClaimRejectionRateHigh")  # the runbook quotes the definition's for
    definitions = load_definitions(repo_copy)
    stack = repo_copy / "Pulumi.selfhost.yaml"
    config = load_config(read_stack_file(stack), str(stack), definitions)
    rules = {r["title"]: r for g in alert_builders.grafana_rule_groups(definitions, config) for r in g["rules"]}
    assert rules["RewardClaimRejectionRateHigh"]["for"] == "5m"
