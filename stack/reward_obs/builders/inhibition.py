"""Alert definitions -> inhibition rules: while a cause fires, the alerts that are its
consequences are held back, so one fault pages once.

Two kinds, both from the definitions:
- declared: an alert lists its causes under `inhibited_by` (a provider outage holds back
  that provider's webhook, duplicate and reconciliation alerts). The rule matches on the
  labels the cause fires per (provider) and on `environment`, so one provider's outage
  never silences another provider's alerts.
- the missing scrape: the rule that watches the scrape (its expression reads only `up`)
  holds back every alert whose expression reads the scraped series, exactly what a missing
  scrape makes stale. The heartbeat reads none, so nothing ever holds it back.

The neutral form (label, op, value matchers) is turned into Alertmanager's
`inhibit_rules` and into Grafana's inhibition rule resources
(notifications.alerting.grafana.app/v1beta1, Grafana 13 and later).
"""
from __future__ import annotations

from reward_obs.lang import promql
from reward_obs.model.definitions import Definitions

EQUAL_ALWAYS = ("environment",)  # a cause in one environment never silences another's alerts


def _reads_scrape(expr: str, contract, recorded: dict[str, str]) -> bool:
    """The expression reads a scraped series, directly or through a recording rule (an SLO
    burn-rate alert reads error ratios recorded from the scraped counters)."""
    for s in promql.selectors(promql.parse(expr)):
        metric = contract.series_metric(s.metric or "")
        if metric is not None and not metric.synthetic:
            return True
        if s.metric in recorded and _reads_scrape(recorded[s.metric], contract, recorded):
            return True
    return False


def inhibition_rules(definitions: Definitions) -> list[dict]:
    """[{name, source: [(label, op, value)], target: [...], equal: [...]}], sorted by name."""
    contract = definitions.contract
    recorded = {r.record: r.expr for r in definitions.recording_rules}
    alerts = sorted((a for a in definitions.alerts if a.is_promql), key=lambda a: a.name)
    by_name = {a.name: a for a in alerts}
    rules = []
    for source in alerts:
        targets = [a.name for a in alerts if source.name in a.inhibited_by]
        if targets:
            labels = promql.output_labels(promql.parse(source.resolved().expr), contract)
            rules.append({"name": f"{source.name}-holds-back-its-consequences", "source": [("alertname", "=", source.name)],
                          "target": [("alertname", "=~", "|".join(targets))], "equal": [*EQUAL_ALWAYS, *sorted(labels)]})
    for source in alerts:
        if not promql.watches_scrape(promql.parse(source.resolved().expr)):
            continue
        stale = [a.name for a in alerts if a.name != source.name and not a.is_heartbeat
                 and _reads_scrape(a.resolved().expr, contract, recorded)]
        if stale:
            rules.append({"name": f"{source.name}-holds-back-what-it-makes-stale", "source": [("alertname", "=", source.name)],
                          "target": [("alertname", "=~", "|".join(stale))], "equal": list(EQUAL_ALWAYS)})
    assert all(n in by_name for r in rules for n in r["target"][0][2].split("|"))
    return sorted(rules, key=lambda r: r["name"])


def matcher_text(label: str, op: str, value: str) -> str:
    """One matcher in Alertmanager's text form: label op "value"."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{label}{op}"{escaped}"'


def alertmanager_inhibit_rules(definitions: Definitions) -> list[dict]:
    return [{"source_matchers": [matcher_text(*m) for m in r["source"]],
             "target_matchers": [matcher_text(*m) for m in r["target"]],
             "equal": list(r["equal"])} for r in inhibition_rules(definitions)]


def grafana_inhibition_rules(definitions: Definitions) -> list[dict]:
    """Grafana's inhibition rule schema (docs/sources/alerting/configure-notifications/
    inhibition-rules.md): name, source_matchers, target_matchers, equal; matchers as
    {label, type, value}."""
    return [{"name": r["name"],
             "source_matchers": [{"label": name, "type": op, "value": v} for name, op, v in r["source"]],
             "target_matchers": [{"label": name, "type": op, "value": v} for name, op, v in r["target"]],
             "equal": list(r["equal"])} for r in inhibition_rules(definitions)]
