"""Loading scenario files (scenarios/*.yaml): schema, metrics contract and alert
definitions checked; every problem names the file and the field."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from reward_obs.catalog.definitions import REPO_ROOT
from reward_obs.catalog.files import json_path
from reward_obs.lang import promql
from reward_obs.model.contract import MetricsContract
from reward_obs.model.definitions import Definitions
from reward_obs.model.durations import parse_duration
from reward_obs.model.errors import ProblemCollector
from reward_obs_dev.scenarios.generator import series_catalog  # the generator knows which series a system exports
from reward_obs_dev.scenarios.model import (
    ACTIONS,
    COUNTER_ONLY,
    DEFAULT_CAMPAIGNS,
    GAUGE_ONLY,
    SCENARIO_DIR,
    SCHEMA,
    SEASON_POINTS_ALERT,
    SYSTEM_ACTIONS,
    TARGET_LABELS,
    Campaign,
    Event,
    Fault,
    PlotSeries,
    Resolve,
    Scenario,
    System,
)


def _minutes(value: str, problems: ProblemCollector, file: str, where: str) -> int | None:
    seconds = parse_duration(value)
    if seconds % 60:
        problems.add(file, where, f"{value!r} is not a whole number of minutes (scenarios have one sample a minute)")
        return None
    return seconds // 60


def scenario_files(root: Path = REPO_ROOT) -> list[Path]:
    return sorted((Path(root) / SCENARIO_DIR).glob("*.yaml"))


def load_scenarios(definitions: Definitions, root: Path = REPO_ROOT, paths: list[Path] | None = None) -> list[Scenario]:
    """Every scenario under root/scenarios (or `paths`), validated; DefinitionError lists all problems."""
    root = Path(root)
    problems = ProblemCollector()
    schema_file = root / "schemas" / SCHEMA
    schema = json.loads((schema_file if schema_file.is_file() else REPO_ROOT / "schemas" / SCHEMA).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    paths = scenario_files(root) if paths is None else [Path(p) for p in paths]
    if not paths:
        problems.add(SCENARIO_DIR, "(directory)", "no scenario files found")
    scenarios = []
    for path in paths:
        try:
            rel = str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            rel = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except OSError as exc:
            problems.add(rel, "(file)", f"cannot read: {exc.strerror}")
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.add(rel, f"line {mark.line + 1}" if mark else "(file)", f"not valid YAML: {getattr(exc, 'problem', exc)}")
            continue
        if data is None:
            problems.add(rel, "(file)", "is empty")
            continue
        errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        for error in errors:
            problems.add(rel, json_path(error), _schema_message(error))
        if errors:
            continue
        before = len(problems.problems)
        scenario = _scenario(rel, path, data, text, definitions, problems)
        if scenario is not None:
            _check_series(scenario, definitions.contract, series_catalog, problems)
            if len(problems.problems) == before:
                scenarios.append(scenario)
    names = [s.name for s in scenarios]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add(SCENARIO_DIR, "name", f"duplicate scenario name {name!r}")
    problems.raise_if_any()
    return scenarios


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and isinstance(error.instance, str):
        return f"{error.instance!r} is neither \"others\" nor a list of alert names"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    return error.message


def _scenario(rel: str, path: Path, data: dict, text: str, definitions: Definitions, problems: ProblemCollector) -> Scenario | None:
    if data["name"] != path.stem:
        problems.add(rel, "name", f"{data['name']!r} must match the file name {path.stem!r}")
    duration = _minutes(data["duration"], problems, rel, "duration")
    if duration is not None and duration < 2:
        problems.add(rel, "duration", "must be at least 2m")
    system = _system(rel, data.get("system", {}), problems)
    # A refused currency (Season Points) is the fault of the one alert that catches it;
    # any other scenario naming one is a mistake.
    for i, c in enumerate(system.campaigns if data.get("system", {}).get("campaigns") else ()):
        if definitions.contract.refused("currency", c.currency) and data.get("fault", {}).get("alert") != SEASON_POINTS_ALERT:
            problems.add(rel, f"system.campaigns[{i}].currency", f"{c.currency!r} is refused by the metrics contract "
                         f"(Season Points are never a currency); only a scenario whose fault is {SEASON_POINTS_ALERT} may export it")
    # The heartbeat fires in every run by design: it is neither a fault nor a silence.
    alerts = {a.name for a in definitions.alerts if not a.is_heartbeat}

    events = []
    for i, e in enumerate(data["events"]):
        event = _event(rel, i, e, duration, system, problems)
        if event is not None:
            events.append(event)

    fault = None
    if "fault" in data:
        f = data["fault"]
        start = _minutes(f["start"], problems, rel, "fault.start")
        within = _minutes(f["within"], problems, rel, "fault.within")
        if f["alert"] not in alerts:
            problems.add(rel, "fault.alert", f"{f['alert']!r} is not a defined alert")
        if start is not None and duration is not None and start >= duration:
            problems.add(rel, "fault.start", f"{f['start']} is not inside the run ({data['duration']})")
        if start is not None and start < 1:
            problems.add(rel, "fault.start", "must be at least 1m, so the alert can be shown silent before it")
        if None not in (start, within, duration) and start + within > duration:
            problems.add(rel, "fault.within", f"start + within ({f['start']} + {f['within']}) is past the end of the run ({data['duration']})")
        rule = definitions.alert(f["alert"])
        if rule is not None:

            try:
                out = promql.output_labels(promql.parse(rule.resolved().expr), definitions.series_contract)
            except Exception:  # noqa: BLE001 - a label check must not hide the real problem
                out = None
            for label in f.get("labels", {}):
                if out is not None and label not in out:
                    problems.add(rel, f"fault.labels.{label}", f"{f['alert']} has no label {label!r} (its alerts carry: {', '.join(sorted(out)) or 'none'})")
        end = _minutes(f["end"], problems, rel, "fault.end") if "end" in f else None
        if end is not None and start is not None and end <= start:
            problems.add(rel, "fault.end", "must be after fault.start")
        resolves = []
        for i, r in enumerate(f.get("resolves", ())):
            r_within = _minutes(r["within"], problems, rel, f"fault.resolves[{i}].within")
            if end is None:
                problems.add(rel, f"fault.resolves[{i}]", "needs fault.end: a reset is measured from the end of the fault")
            elif None not in (r_within, duration) and end + r_within > duration:
                problems.add(rel, f"fault.resolves[{i}].within", f"end + within ({f['end']} + {r['within']}) is past the end of the run ({data['duration']})")
            if r_within is not None:
                resolves.append(Resolve(dict(r.get("labels", {})), r_within))
        if None not in (start, within):
            fault = Fault(start, f["alert"], dict(f.get("labels", {})), within, end, tuple(resolves))

    may_fire = tuple(data.get("may_fire", ()))
    for i, name in enumerate(may_fire):
        if name not in alerts:
            problems.add(rel, f"may_fire[{i}]", f"{name!r} is not a defined alert")
        if fault and name == fault.alert:
            problems.add(rel, f"may_fire[{i}]", f"{name} is the alert under test (fault.alert)")
    expected = {fault.alert} if fault else set()
    if data["silent"] == "others":
        silent = tuple(sorted(alerts - expected - set(may_fire)))
    else:
        silent = tuple(data["silent"])
        for i, name in enumerate(silent):
            if name not in alerts:
                problems.add(rel, f"silent[{i}]", f"{name!r} is not a defined alert")
            elif name in expected:
                problems.add(rel, f"silent[{i}]", f"{name} is the alert under test (fault.alert)")
            elif name in may_fire:
                problems.add(rel, f"silent[{i}]", f"{name} is also listed under may_fire")
        for name in sorted(alerts - expected - set(may_fire) - set(silent)):
            problems.add(rel, "silent", f"{name} is neither under test, under may_fire nor silent: list it, or write silent: others")

    plot = tuple(PlotSeries(p["metric"], dict(p.get("labels", {}))) for p in data.get("plot", ()))
    if duration is None:
        return None
    return Scenario(rel, data["name"], " ".join(data["description"].split()), duration, system, tuple(events),
                    fault, may_fire, silent, plot, text)


def _system(rel: str, data: dict, problems: ProblemCollector) -> System:
    campaigns = []
    for i, c in enumerate(data.get("campaigns", ())):
        where = f"system.campaigns[{i}]"
        start = _minutes(c.get("start", "0s"), problems, rel, f"{where}.start") or 0
        end = _minutes(c["end"], problems, rel, f"{where}.end") if "end" in c else None
        if end is not None and end <= start:
            problems.add(rel, f"{where}.end", "must be after start")
        campaigns.append(Campaign(c["id"], c["pool"], c["currency"], float(c["budget"]), float(c["share"]), float(c["reward"]),
                                  float(c.get("spent", 0.0)), c.get("source", "sponsor"), start, end))
    for key in ("id", "pool"):
        values = [getattr(c, key) for c in campaigns]
        for v in sorted({v for v in values if values.count(v) > 1}):
            problems.add(rel, "system.campaigns", f"duplicate campaign {key} {v!r}")
    hh, mm = data.get("clock", "12:00").split(":")
    return System(
        clock=int(hh) * 60 + int(mm),
        profile=data.get("profile", "daily"),
        day_factors=tuple(float(f) for f in data.get("day_factors", (1.0,))),
        claims_per_minute=float(data.get("claims_per_minute", 60.0)),
        noise=data.get("noise", True),
        seed=data.get("seed", 1),
        campaigns=tuple(campaigns) or DEFAULT_CAMPAIGNS,
    )


def _event(rel: str, i: int, e: dict, duration: int | None, system: System, problems: ProblemCollector) -> Event | None:
    where = f"events[{i}]"
    actions = [a for a in ACTIONS if a in e]
    if len(actions) != 1:
        problems.add(rel, where, f"needs exactly one action of {', '.join(ACTIONS)} (has: {', '.join(actions) or 'none'})")
        return None
    action = actions[0]
    at = _minutes(e["at"], problems, rel, f"{where}.at")
    until = _minutes(e["until"], problems, rel, f"{where}.until") if "until" in e else None
    over = _minutes(e["over"], problems, rel, f"{where}.over") if "over" in e else None
    if at is None:
        return None
    if duration is not None and at > duration:
        problems.add(rel, f"{where}.at", f"{e['at']} is past the end of the run")
    if until is not None and until <= at:
        problems.add(rel, f"{where}.until", "must be after at")
    if until is not None and duration is not None and until > duration + 1:
        problems.add(rel, f"{where}.until", f"{e['until']} is past the end of the run")
    if action == "ramp_to" and not over:
        problems.add(rel, f"{where}.over", "ramp_to needs over: the time it takes to reach the value")
    if over is not None and action != "ramp_to":
        problems.add(rel, f"{where}.over", "only ramp_to takes over")
    if action in SYSTEM_ACTIONS:
        for key in ("metric", "labels", "create"):
            if key in e:
                problems.add(rel, f"{where}.{key}", f"a {action} event applies to the whole system and names no series")
        if action == "fund" and e["fund"]["pool"] not in {c.pool for c in system.campaigns}:
            problems.add(rel, f"{where}.fund.pool", f"{e['fund']['pool']!r} is not a pool of the system's campaigns "
                                                   f"({', '.join(c.pool for c in system.campaigns)})")
        if action == "restart" and until is not None:
            problems.add(rel, f"{where}.until", "a restart is one failed scrape; it takes no until")
    elif "metric" not in e:
        problems.add(rel, f"{where}.metric", f"a {action} event needs the metric it changes")
        return None
    return Event(i, at, until, action, e[action], e.get("metric"), dict(e.get("labels", {})), e.get("create", False), over,
                 e.get("note", ""))


def _check_series(scenario: Scenario, contract: MetricsContract, catalog, problems: ProblemCollector) -> None:
    """Metrics and labels against the contract; every selector must match a series."""
    rel = scenario.file
    known = {(m, tuple(sorted(labels.items()))) for m, labels in catalog(scenario, contract)}

    def check_selector(where: str, metric: str, labels: dict) -> bool:
        spec = contract.series_metric(metric)
        if spec is None:
            problems.add(rel, f"{where}.metric", f"{metric!r} is not a series of the metrics contract "
                                                  "(a histogram is read as its _bucket, _count and _sum series)")
            return False
        series_labels = sorted(contract.series_labels(metric))
        ok = True
        for label, value in labels.items():
            if label in TARGET_LABELS:
                problems.add(rel, f"{where}.labels.{label}", "is set by the scrape target, not by a scenario")
                ok = False
            elif label not in series_labels:
                problems.add(rel, f"{where}.labels.{label}", f"{metric} has no label {label!r} (it has: {', '.join(series_labels) or 'none'})")
                ok = False
            else:
                allowed = contract.label_values(spec.name, label)
                if allowed is not None and value not in allowed:
                    problems.add(rel, f"{where}.labels.{label}", f"{value!r} is not a value of {label} on {metric} (one of: {', '.join(allowed)})")
                    ok = False
        return ok

    created: set = set()
    for e in scenario.events:
        if e.metric is None:
            continue
        if not check_selector(e.where, e.metric, e.labels):
            continue
        spec = contract.series_metric(e.metric)
        kind = "counter" if spec.type in ("counter", "histogram") else "gauge"  # a histogram's series count
        if (e.action in COUNTER_ONLY and kind != "counter") or (e.action in GAUGE_ONLY and kind != "gauge"):
            problems.add(rel, f"{e.where}.{e.action}", f"{e.action} does not apply to {e.metric}, a {spec.type}")
        key = (e.metric, tuple(sorted(e.labels.items())))
        if e.create:
            missing = [label for label in spec.labels if label not in e.labels and label not in TARGET_LABELS]
            if missing:
                problems.add(rel, f"{e.where}.labels", f"create needs every label of {e.metric}; missing: {', '.join(missing)}")
            elif key in known or key in created:
                problems.add(rel, f"{e.where}.create", f"{e.metric}{_fmt(e.labels)} already exists")
            created.add(key)
            continue
        matches = [k for k in known | created if k[0] == e.metric and set(e.labels.items()) <= set(k[1])]
        if not matches:
            problems.add(rel, f"{e.where}.labels", f"no series {e.metric}{_fmt(e.labels)} in this system (add create: true to make one)")
    for i, p in enumerate(scenario.plot):
        check_selector(f"plot[{i}]", p.metric, p.labels)


def _fmt(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
