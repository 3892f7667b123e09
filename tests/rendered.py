"""Helpers that read a rendered tree the way Grafana and Prometheus would."""
from __future__ import annotations

import json
from pathlib import Path

import yaml


def grafana_rules(out: Path) -> dict[str, dict]:
    data = yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())
    return {rule["title"]: {**rule, "group": group["name"], "folder": group["folder"]}
            for group in data["groups"] for rule in group["rules"]}


def prometheus_rules(out: Path) -> dict[str, dict]:
    data = yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())
    return {rule["alert"]: {**rule, "group": group["name"]} for group in data["groups"] for rule in group["rules"]}


def dashboard(out: Path, uid: str) -> dict:
    [path] = (out / "grafana/dashboards").glob(f"*/{uid}.json")  # one directory per folder
    return json.loads(path.read_text())


def panels(dashboard_json: dict) -> list[dict]:
    return [p for p in dashboard_json["panels"] if p["type"] != "row"]
