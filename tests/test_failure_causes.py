"""Failure causes (contract/metrics.yaml, label `cause`, `blame`): the payout SLOs count
the causes the contract blames on the platform, the player-side ticket the player's, and
the lists come from the contract only. Expected values are the contract's causes written
out by hand, never recomputed from the code under test."""
from __future__ import annotations

import pytest
import yaml

from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.errors import DefinitionError

PLATFORM = "provider_error|timeout|platform_error|insufficient_funds|rejected_by_provider"
PLAYER = "invalid_destination|compliance_block"


def test_the_payout_slos_count_the_platform_causes_only(definitions):
    slos = {s.name: s for s in definitions.slos}
    assert slos["payout-success"].query("bad", "5m") == (
        f'sum by (provider) (rate(reward_payout_failures_total{{cause=~"{PLATFORM}"}}[5m]))')
    assert slos["payout-success-fleet"].query("bad", "1h") == (
        f'sum(rate(reward_payout_failures_total{{cause=~"{PLATFORM}"}}[1h]))')
    # A player's failure is a final payout handled correctly: it stays in the total.
    assert slos["payout-success"].query("total", "5m") == (
        'sum by (provider) (rate(reward_payouts_total{result=~"paid|failed"}[5m]))')


def test_the_player_side_ticket_reads_the_player_causes(definitions, config):
    alert = definitions.alert("RewardPayoutPlayerFailuresHigh").resolved()
    assert alert.rule.severity == "warning"
    assert alert.expr == (
        f'sum by (provider) (rate(reward_payout_failures_total{{cause=~"{PLAYER}"}}[1h]))\n'
        "/\n"
        'sum by (provider) (rate(reward_payouts_total{result=~"paid|failed"}[1h]))\n'
        "and on (provider)\n"
        f'sum by (provider) (increase(reward_payout_failures_total{{cause=~"{PLAYER}"}}[1h])) >= 20')
    assert (alert.rule.op, alert.threshold, alert.for_) == (">", 0.04, "1h")


def test_every_cause_is_blamed_on_exactly_one_side(definitions):
    contract = definitions.contract
    assert "|".join(contract.blamed("cause", "platform")) == PLATFORM
    assert "|".join(contract.blamed("cause", "player")) == PLAYER
    assert contract.metrics["reward_payout_failures_total"].labels == ("provider", "cause")


def test_the_event_contract_names_the_same_causes(definitions):
    """A payout.failed event's failure_cause and the metric's cause are one vocabulary."""
    schema = yaml.safe_load((definitions.root / "contract" / "reward_event.schema.json").read_text())
    assert schema["properties"]["failure_cause"]["enum"] == definitions.contract.labels["cause"]["values"]


def _break_contract(root, change) -> DefinitionError:
    path = root / "contract" / "metrics.yaml"
    data = yaml.safe_load(path.read_text())
    change(data["labels"]["cause"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(DefinitionError) as err:
        load_definitions(root)
    return err.value


@pytest.mark.parametrize("change, message", [
    (lambda c: c["values"].append("lost_in_transit"),
     "contract/metrics.yaml:labels.cause.blame: 'lost_in_transit' is not marked: say whether it counts against the platform or the player"),
    (lambda c: c["blame"].update(typo="player"),
     "contract/metrics.yaml:labels.cause.blame.typo: is not one of the values of 'cause'"),
    (lambda c: c["blame"].update(timeout="provider"),
     "contract/metrics.yaml:labels.cause.blame.timeout: 'provider' is not one of ['platform', 'player']"),
], ids=["unmarked value", "unknown value", "unknown side"])
def test_a_wrong_blame_is_reported_by_file_and_field(repo_copy, change, message):
    err = _break_contract(repo_copy, change)
    assert message in [str(p) for p in err.problems], "\n".join(map(str, err.problems))


def test_a_cause_moved_to_the_player_leaves_the_slo(repo_copy):
    """The SLO query follows the contract's marking: nothing else is edited."""
    path = repo_copy / "contract" / "metrics.yaml"
    data = yaml.safe_load(path.read_text())
    data["labels"]["cause"]["blame"]["rejected_by_provider"] = "player"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    slos = {s.name: s for s in load_definitions(repo_copy).slos}
    assert 'cause=~"provider_error|timeout|platform_error|insufficient_funds"' in slos["payout-success"].query("bad", "5m")
