"""Selectors and names in one place (model/names.py, kubernetes-mixin's `_config`): the
definitions write %(job_selector)s / %(log_selector)s, the catalog expands them, and the
rendered queries carry the literal selectors below (written out here, not imported)."""
from __future__ import annotations

import pytest

from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.errors import DefinitionError

from helpers import dashboard


def test_rendered_queries_carry_the_literal_selectors(out):
    rules = (out / "prometheus" / "reward-alerts.rules.yaml").read_text(encoding="utf-8")
    assert 'max(up{job="rewards"}) or vector(0)' in rules
    grafana = (out / "grafana" / "provisioning" / "alerting" / "rules.yaml").read_text(encoding="utf-8")
    assert '{app="reward-backend"} | json' in grafana
    trace = dashboard(out, "reward-trace")
    exprs = [t["expr"] for p in trace["panels"] for t in p.get("targets", [])]
    assert exprs and all('{app="reward-backend"}' in e for e in exprs)
    assert not any("%(" in e for e in exprs)


def test_an_unknown_selector_is_reported(repo_copy):
    path = repo_copy / "alert_rules" / "RewardMetricsAbsent.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("%(job_selector)s", "%(jobselector)s"), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(repo_copy)
    assert any(p.file == "alert_rules/RewardMetricsAbsent.yaml" and p.field == "expr" and "%(jobselector)s is not a known selector" in p.message
               for p in err.value.problems), err.value.problems


def test_a_runbook_with_another_selector_is_reported(repo_copy):
    path = repo_copy / "runbooks" / "reward-metrics-missing.md"
    path.write_text(path.read_text(encoding="utf-8").replace('up{job="rewards"}', 'up{job="reward"}', 1), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(repo_copy)
    assert any(p.file == "runbooks/reward-metrics-missing.md" and 'job="reward" is not the stack\'s selector: use job="rewards"' in p.message
               for p in err.value.problems), err.value.problems
