"""reward_obs_dev.scenarios.victoriametrics without a server: how the rule files are cut
into replay layers (the live proof is tests/test_engines.py)."""
from __future__ import annotations

import yaml

from reward_obs_dev.scenarios import victoriametrics as vm


def test_rules_are_replayed_in_dependency_layers(tmp_path):
    """A rule runs one layer after the deepest recording rule it reads; groups keep their
    name and interval (literal rule set, layers worked out by hand)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n"
        "- name: rec\n  interval: 1m\n  rules:\n"
        "  - {record: 'a:rate5m', expr: 'rate(x_total[5m])'}\n"
        "  - {record: 'b:rate5m', expr: 'rate(y_total[5m])'}\n"
        "  - {record: 'a:ratio', expr: 'a:rate5m / b:rate5m'}\n"
        "  - {record: 'a:ratio_avg', expr: 'avg_over_time(a:ratio[30m:5m])'}\n"
        "- name: alerts\n  interval: 2m\n  rules:\n"
        "  - {alert: Raw, expr: 'up < 1', for: 4m}\n"
        "  - {alert: Burn, expr: 'a:ratio_avg > 0.1'}\n", encoding="utf-8")
    paths = vm.layers([rules], tmp_path)
    got = [[(g["name"], g["interval"], [r.get("record") or r.get("alert") for r in g["rules"]])
            for g in yaml.safe_load(p.read_text())["groups"]] for p in paths]
    assert got == [
        [("rec", "1m", ["a:rate5m", "b:rate5m"]), ("alerts", "2m", ["Raw"])],
        [("rec", "1m", ["a:ratio"])],
        [("rec", "1m", ["a:ratio_avg"])],
        [("alerts", "2m", ["Burn"])],
    ]


def test_layers_do_not_depend_on_the_order_rules_come_in(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n- name: rec\n  rules:\n"
        "  - {record: 'a:ratio', expr: 'a:rate5m / b:rate5m'}\n"
        "  - {record: 'a:rate5m', expr: 'rate(x_total[5m])'}\n"
        "  - {record: 'b:rate5m', expr: 'rate(y_total[5m])'}\n", encoding="utf-8")
    got = [[r["record"] for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]] for p in vm.layers([rules], tmp_path)]
    assert got == [["a:rate5m", "b:rate5m"], ["a:ratio"]]
