"""Recording rules as data: checked against the metrics contract and the dashboards like
alert queries, and built into a Prometheus rule file promtool accepts and into
Grafana-managed recording rules."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from reward_obs.builders import grafana_recording
from reward_obs.builders import recording as recording_builders
from reward_obs.catalog.definitions import load_definitions
from reward_obs.cli import main
from reward_obs.lang.dashboard_queries import panel_queries
from reward_obs.model.errors import DefinitionError

from conftest import ROOT, run_cli

RULES = ROOT / "recording_rules" / "reward-dashboard.yaml"


@pytest.fixture
def rules_copy(repo_copy):
    assert (repo_copy / "recording_rules").is_dir()  # part of the definitions copy
    return repo_copy


def _edit(root, change):
    path = root / "recording_rules" / "reward-dashboard.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _validate(root):
    return run_cli("--root", str(root), "--stack-config", str(root / "Pulumi.selfhost.yaml"), "validate")


def test_recording_rules_load_and_serve_real_panel_queries(definitions):
    rules = definitions.recording_rules
    # Hand-written rules exist for panels (reward-dashboard, and every pool's ledger for
    # the overview, reward-pools-ledger-overview), or for an alert that would read hours
    # of every pool each minute (reward-pools-trend) or join every pool's gauges again
    # (reward-pools-ratio); the SLO-generated ones (slos/) for the burn-rate alerts, and
    # serve a panel only where one reads them.
    alert_text = "\n".join(a.expr for a in definitions.alerts)
    for_panels = ("recording_rules/reward-dashboard.yaml", "recording_rules/reward-pools-ledger-overview.yaml")
    assert rules and all(r.serves for r in rules if r.file in for_panels)
    for r in rules:
        if r.file in ("recording_rules/reward-pools-trend.yaml", "recording_rules/reward-pools-ratio.yaml"):
            assert re.search(rf"\b{re.escape(r.record)}\b", alert_text), f"{r.record} is read by no alert"
        elif r.file.startswith("slos/"):
            # The 5m and 1h rates are read by the ratios recorded from them.
            readers = alert_text + "\n".join(o.expr for o in rules if o.record != r.record)
            assert r.serves or re.search(rf"\b{re.escape(r.record)}\b", readers), f"{r.record} is read by nothing"
    assert {s.panel for r in rules for s in r.serves} <= {
        f"{q.dashboard}/{q.panel_key}[{q.ref}]" for q in panel_queries(definitions)}


def test_rendered_recording_rules_pass_promtool(definitions, config, tmp_path):
    from reward_obs.sinks.files import PROMETHEUS_RECORDING_FILE, render_files

    assert config.recording_rules == "prometheus"
    path = tmp_path / "rules.yaml"
    path.write_text(render_files(definitions, config)[PROMETHEUS_RECORDING_FILE])
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(definitions.recording_rules)} rules found" in result.stdout


def test_grafana_recording_rules_write_the_same_series(definitions, config):
    prom = {r["record"]: r["expr"] for g in recording_builders.prometheus_groups(definitions) for r in g["rules"]}
    grafana = [r for g in grafana_recording.grafana_recording_groups(definitions, config) for r in g["rules"]]
    assert {r["record"]["metric"]: r["data"][0]["model"]["expr"] for r in grafana} == prom
    assert all(len(r["uid"]) <= 40 for r in grafana) and len({r["uid"] for r in grafana}) == len(grafana)
    assert all(r["record"]["targetDatasourceUid"] == config.prometheus_datasource_uid for r in grafana)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["rules"][0].update(expr="sum by (currency) (reward_pool_left)"),
     "rules[currency:reward_pool_remaining:sum].expr: metric 'reward_pool_left' is not in the metrics contract"),
    (lambda d: d["rules"][0].update(labels=["pool_id"]),
     "rules[currency:reward_pool_remaining:sum].labels: the expression keeps ['currency'], not ['pool_id']"),
    (lambda d: d["rules"][0]["serves"][0].update(panel="reward-operations/no_such_panel[A]"),
     "serves[0].panel: no PromQL panel query reward-operations/no_such_panel[A]"),
    (lambda d: d["rules"][0]["serves"][0].update(raw='sum by (currency) (reward_pool_remaining{player="x"})'),
     "serves[0].raw: reward_pool_remaining has no label 'player'"),
    (lambda d: d["rules"][0]["serves"][0].update(panel="reward-operations/paid_rewards[A]"),
     "serves[0].panel: reward-operations/paid_rewards[A] does not read currency:reward_pool_remaining:sum"),
    (lambda d: d["rules"][0].update(record="remaining_ratio"), "does not match"),
])
def test_a_wrong_recording_rule_is_refused(rules_copy, change, message):
    _edit(rules_copy, change)
    result = _validate(rules_copy)
    assert result.returncode == 1
    assert "recording_rules/reward-dashboard.yaml:" in result.stderr and message in result.stderr, result.stderr


def test_a_panel_reading_a_series_no_rule_records_is_refused(rules_copy):
    # The fleet-wide panels read recorded series: without the rule the dashboard is refused.
    _edit(rules_copy, lambda d: d.update(rules=[r for r in d["rules"] if r["record"] != "currency:reward_pool_paid:sum"]))
    result = _validate(rules_copy)
    assert result.returncode == 1
    assert "dashboards/reward-operations.yaml:" in result.stderr
    assert "metric 'currency:reward_pool_paid:sum' is not in the metrics contract" in result.stderr, result.stderr


def test_every_recorded_series_a_panel_reads_is_recorded(definitions):
    from reward_obs.lang.dashboard_queries import panel_queries
    from reward_obs.lang.promql import parse, selectors, without_grafana_variables

    recorded = {r.record for r in definitions.recording_rules}
    served = {s.panel: r.record for r in definitions.recording_rules for s in r.serves}
    for q in panel_queries(definitions):
        names = {sel.metric for sel in selectors(parse(without_grafana_variables(q.expr)))}
        for name in names & recorded:
            assert served.get(f"{q.dashboard}/{q.panel_key}[{q.ref}]") == name, (q, name)
    assert served, "no panel reads a recorded series"


def test_the_catalog_refuses_a_bad_rule(rules_copy):
    _edit(rules_copy, lambda d: d["rules"][1].update(expr="sum by (pool_id) (nope)"))
    with pytest.raises(DefinitionError) as exc:
        load_definitions(rules_copy)
    assert any(p.file == "recording_rules/reward-dashboard.yaml" and "nope" in p.message for p in exc.value.problems)


def test_a_recording_group_named_like_an_alert_group_is_refused(rules_copy):
    # A Grafana rule group is one object per folder and name: one would overwrite the other.
    alert_group = yaml.safe_load((rules_copy / "alert_rules" / "RewardPoolLow.yaml").read_text())["group"]
    _edit(rules_copy, lambda d: d.update(group=alert_group))
    result = _validate(rules_copy)
    assert result.returncode == 1
    assert f"recording_rules/reward-dashboard.yaml:group: '{alert_group}' is also an alert rule group" in result.stderr, result.stderr


def test_validate_reads_each_recording_rule_file_once(monkeypatch):
    reads = []
    original_text, original_bytes = Path.read_text, Path.read_bytes

    def counting(original):
        def read(self, *args, **kwargs):
            if self.parent.name == "recording_rules":
                reads.append(self.name)
            return original(self, *args, **kwargs)
        return read

    # The strict reader decodes bytes itself (catalog/files.py); count either way of reading.
    monkeypatch.setattr(Path, "read_text", counting(original_text))
    monkeypatch.setattr(Path, "read_bytes", counting(original_bytes))
    assert main(["--root", str(ROOT), "validate"]) == 0
    files = sorted(p.name for p in (ROOT / "recording_rules").glob("*.yaml"))
    assert files and sorted(reads) == files
