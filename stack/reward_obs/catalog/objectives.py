"""Objectives per stack and per provider: `sloObjectives` in Pulumi.<stack>.yaml replaces
an SLO's objective (slos/*.yaml) fleet-wide (`target`) or for some providers
(`providers`). Checked with the rest of the stack config (`check`), then applied to the
definitions (`apply`): the SLO's recording and alert rules are generated again with the
stack's objectives (burn thresholds, the 30-day budget, the alert text and the numbers
the runbooks bind: catalog/runbook_numbers.py renders them in the Grafana copy), and the
panels that read the SLO's recorded series show the stack's objective. The defaults and
their reasoning: docs/slos.md."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from reward_obs.catalog import slos as slo_catalog
from reward_obs.model.definitions import Dashboard, Definitions
from reward_obs.model.numbers import format_number
from reward_obs.model.slo import SLO

KEY = "sloObjectives"


def check(values: dict, definitions: Definitions | None, add: Callable[[str, str], None]) -> None:
    """Every SLO named exists; `providers` only for an SLO evaluated per provider, and only
    providers of the metrics contract. (The schema bounds each target: 0.5 < target < 1.)"""
    if definitions is None:
        return
    slos = {s.name: s for s in definitions.slos}
    providers = tuple(definitions.contract.labels.get("provider", {}).get("values", ()))
    for name, spec in sorted(values.items()):
        s = slos.get(name)
        if s is None:
            add(f"{KEY}.{name}", f"is not an SLO (slos/*.yaml: {', '.join(sorted(slos))})")
            continue
        for provider in sorted(spec.get("providers", {})):
            if "provider" not in s.labels:
                add(f"{KEY}.{name}.providers", f"{name} is evaluated over every provider together: set `target` instead")
                break
            if provider not in providers:
                add(f"{KEY}.{name}.providers.{provider}", f"is not a provider of the metrics contract ({', '.join(providers)})")


def with_objectives(s: SLO, spec: dict) -> SLO:
    """The SLO with a stack's objectives; a provider set to the SLO's own objective is no
    exception."""
    objective = float(spec.get("target", s.objective))
    apart = tuple(sorted((p, float(o)) for p, o in spec.get("providers", {}).items() if float(o) != objective))
    new = dataclasses.replace(s, objective=objective, provider_objectives=apart)
    # The description states the objective first (slos/*.yaml): it says the stack's.
    return dataclasses.replace(new, description=s.description.replace(_percent(s.objective), slo_catalog.objective_text(new), 1))


def apply(definitions: Definitions, config) -> Definitions:
    """The definitions with the stack's objectives (unchanged when it sets none)."""
    values = getattr(config, "slo_objectives", None) or {}
    if not values:
        return definitions
    slos = tuple(with_objectives(s, values[s.name]) if s.name in values else s for s in definitions.slos)
    changed = {s.name: (old, s) for old, s in zip(definitions.slos, slos, strict=True) if s != old}
    if not changed:
        return definitions
    files = {new.file for _, new in changed.values()}
    new_slos = [new for _, new in changed.values()]
    dashboards = tuple(_dashboard(d, changed.values()) for d in definitions.dashboards)
    recording = [r for r in definitions.recording_rules if r.file not in files]
    recording += slo_catalog.recording_rules(new_slos, dashboards)
    alerts = [a for a in definitions.alerts if a.slo not in changed] + slo_catalog.alert_rules(new_slos)
    return dataclasses.replace(definitions, slos=slos, dashboards=dashboards, recording_rules=tuple(recording),
                               alerts=tuple(sorted(alerts, key=lambda a: [x.name for x in definitions.alerts].index(a.name))))


def _percent(objective: float) -> str:
    return f"{format_number(round(objective * 100, 9))}%"


def _dashboard(d: Dashboard, changes) -> Dashboard:
    """Panels that read an SLO's recorded series: a threshold at the old objective moves
    to the new one, and the description's `objective N%` says the stack's."""
    rows = []
    for row in d.rows:
        panels = []
        for p in row.panels:
            for old, new in changes:
                records = re.compile(rf"\b[a-z_]+:reward_slo_{re.escape(old.name.replace('-', '_'))}_(bad|total|errors|budget):")
                if not any(records.search(q.expr) for q in p.queries):
                    continue
                thresholds = tuple({**t, "value": new.objective} if t.get("value") == old.objective else t for t in p.thresholds)
                description = p.description.replace(f"objective {_percent(old.objective)}",
                                                    f"objective {slo_catalog.objective_text(new)}")
                p = dataclasses.replace(p, thresholds=thresholds, description=description)
            panels.append(p)
        rows.append(dataclasses.replace(row, panels=tuple(panels)))
    return dataclasses.replace(d, rows=tuple(rows))
