"""The stack against a real Prometheus and Alertmanager, fed by the reward simulator.

One Prometheus (scrape and rule evaluation every 1s) loads the rule file that
`render_files` writes, with two test-only changes, both said here: the stack config
shortens the alerts' windows and `for` through alertOverrides (the real builders apply
them, as for any stack), and the test copy of the rule file evaluates its groups every
1s instead of the rendered 1m. Alertmanager gets the routing that
`builders.alertmanager` generates from notifications/routing.yaml, with group_wait and
group_interval of 1s, and posts to a webhook receiver in this process.

Yesterday's claim traffic (RewardClaimVolumeAbnormal compares with `offset 1d`) is
backfilled with promtool from the simulator's own healthy run before Prometheus starts,
and the recording rules' yesterday with `promtool tsdb create-blocks-from rules` (the
dashboard's claim-volume panel reads the recorded series a day back).

Phases, in order: healthy (every dashboard query returns data, each recorded series a
panel reads equals its raw-metric query at the same instant, no alert is active), all
faults at once (each on its own pool, campaign or provider: each alert fires with the
labels of its fault and its notification, with the runbook URL, reaches the receiver its
severity routes to), simulator stopped (RewardMetricsAbsent fires and pages).
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from reward_obs.builders import recording as recording_builders
from reward_obs.builders.alertmanager import alertmanager_config
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.lang.dashboard_queries import default_variables, panel_queries, rate_interval, substitute
from reward_obs.sinks.files import PROMETHEUS_RULE_FILE, dump_yaml, render_files
from reward_obs_dev.servers import LOOPBACK, Alertmanager, Prometheus, backfill, backfill_recording_rules
from reward_obs_dev.simulator import FAULTS, METRICS_ABSENT_ALERT, EventSink, Simulator, SimulatorServer, Topology

from conftest import STACK_FILE
from helpers import promql_queries, write_openmetrics

# One Prometheus, Alertmanager and simulator for the whole module: its tests stay on one worker.
pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-stack")]

SCRAPE = 1  # seconds: scrape and rule evaluation interval of the test Prometheus
SPEED = 20.0  # simulated seconds per real second
TOPOLOGY = Topology(pools=4, campaigns=2, providers=6)
WINDOW = "20s"
LIVE_OVERRIDES = {
    "RewardPayoutWebhookFailing": {"params": {"window": WINDOW}, "for": "2s"},
    "RewardPoolExhausted": {"params": {"window": WINDOW}, "for": "1s"},
    "RewardPoolLow": {"for": "2s"},
    # `for` equal to the window, as shipped: the outage (2s) fires first, so its inhibition
    # is in place before the duplicates it causes would notify.
    "RewardDuplicatePayoutAttempt": {"params": {"window": WINDOW}, "for": WINDOW},
    "RewardPayoutProviderOutage": {"params": {"window": WINDOW, "probe_window": "10s"}, "for": "2s"},
    "RewardClaimVolumeAbnormal": {"params": {"window": WINDOW}, "for": "2s"},
    "RewardClaimRejectionRateHigh": {"params": {"window": WINDOW}, "for": "2s"},
    "RewardMetricsAbsent": {"for": "2s"},
    # Reconciliation runs every 300 simulated seconds, 15 real seconds here.
    "RewardPayoutDoublePaid": {"params": {"window": "10m"}},
    "RewardReconciliationMismatch": {"for": "1s"},
    "RewardReconciliationStale": {"threshold": 25, "for": "1s"},
}
RECEIVER_PATHS = {"rewards-oncall-webhook": "/oncall", "rewards-telegram": "/chat", "rewards-email": "/email",
                  "rewards-heartbeat": "/heartbeat"}
HEARTBEAT = "RewardHeartbeat"
FAST_NOTIFY = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}


# The waits allow a minute: under CI load (two promtool runs beside the live stack) an
# evaluation or a notification can lag by many seconds, and a met condition returns at once.
def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


class Receiver:
    """The notification endpoint: records every webhook post from Alertmanager."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        lock = self.lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with lock:
                    posts.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.httpd.server_address[1]}"

    def alerts(self, path: str) -> list[dict]:
        with self.lock:
            return [a for p, body in self.posts if p == path for a in body["alerts"]]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class LiveStack:
    def __init__(self, definitions, work: Path):
        values = read_stack_file(STACK_FILE) | {"alertOverrides": LIVE_OVERRIDES, "rewardsLive": True}
        self.definitions = definitions
        self.config = load_config(values, "live-test", definitions)
        self.work = work
        self.events_path = work / "events.ndjson"
        self.events_file = open(self.events_path, "w", encoding="utf-8")
        self.sim = Simulator(definitions.contract, TOPOLOGY, "healthy", seed=7,
                             events=EventSink(self.events_file, random.Random(8)))
        self.sim_server = SimulatorServer(self.sim, LOOPBACK, 0, speed=SPEED, tick=0.2)
        self.receiver = Receiver()
        self.alertmanager = None
        self.prometheus = None

    def start(self):
        self.sim_server.start()
        urls = {name: self.receiver.base + path for name, path in RECEIVER_PATHS.items()}
        am_config = alertmanager_config(self.definitions, urls, timing=FAST_NOTIFY)
        self.alertmanager = Alertmanager(self.work / "alertmanager", dump_yaml(am_config)).start()

        rules = yaml.safe_load(render_files(self.definitions, self.config)[PROMETHEUS_RULE_FILE])
        for group in rules["groups"]:
            group["interval"] = f"{SCRAPE}s"  # test copy: the rendered file evaluates every 1m
        self.runbook_urls = {r["alert"]: r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"]}
        rules["groups"] += [{**g, "interval": f"{SCRAPE}s"} for g in recording_builders.prometheus_groups(self.definitions)]
        prom_config = {
            "global": {"scrape_interval": f"{SCRAPE}s", "evaluation_interval": f"{SCRAPE}s"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{self.alertmanager.port}"]}]}]},
            "scrape_configs": [{"job_name": self.definitions.contract.scrape_job,
                                "static_configs": [{"targets": [self.sim_server.address]}]}],
        }
        self.prometheus = Prometheus(self.work / "prometheus", prom_config, {"reward-alerts.rules.yaml": dump_yaml(rules)},
                                     extra_args=("--rules.alert.resend-delay=1s",))
        self._backfill_yesterday()
        self.prometheus.start()
        now = time.time()
        backfill_recording_rules(self.prometheus, [{**g, "interval": "10s"} for g in recording_builders.prometheus_groups(self.definitions)],
                                 start=now - 86400 - 120, end=now - 86400 + 240, eval_interval="10s")
        return self

    def _backfill_yesterday(self):
        """Yesterday's claims and claim decisions around this time, from a healthy simulator at
    the same speed (the alert and the runbooks compare with `offset 1d`)."""
        yesterday = Simulator(self.definitions.contract, TOPOLOGY, "healthy", seed=11)
        now = time.time()
        path = self.work / "yesterday.om"
        with open(path, "w", encoding="utf-8") as out:
            write_openmetrics(yesterday, out, start=now - 86400 - 120, end=now - 86400 + 240, step=1.0,
                              extra_labels={"job": self.definitions.contract.scrape_job, "instance": self.sim_server.address},
                              only={"reward_claim_requests_total", "reward_claim_decisions_total"}, sim_step=SPEED)
        backfill(path, self.prometheus.data_dir)

    def stop(self):
        for stop in (self.sim_server.stop, lambda: self.prometheus and self.prometheus.stop(),
                     lambda: self.alertmanager and self.alertmanager.stop(), self.receiver.stop, self.events_file.close):
            try:
                stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass


@pytest.fixture(scope="module")
def stack(definitions):
    work = Path(tempfile.mkdtemp(prefix="reward-obs-live-"))
    live = LiveStack(definitions, work)
    try:
        yield live.start()
    finally:
        live.stop()
        shutil.rmtree(work, ignore_errors=True)


def active_alerts(prom: Prometheus) -> list[dict]:
    """Active alerts but the heartbeat, which is always firing."""
    return [a for a in prom.alerts() if a["state"] in ("pending", "firing") and a["labels"]["alertname"] != HEARTBEAT]


def alertmanager_alerts(stack) -> list[dict]:
    """Alertmanager's own view (API v2): each alert with status.state and inhibitedBy."""
    with urllib.request.urlopen(f"{stack.alertmanager.url}/api/v2/alerts", timeout=10) as r:
        return json.loads(r.read())


def test_healthy_every_dashboard_query_returns_data_and_nothing_alerts(stack):
    prom = stack.prometheus
    window = rate_interval(SCRAPE, SCRAPE)
    wait_for("two scrapes of the simulator", lambda: prom.query('count_over_time(up{job="rewards"}[1m]) >= 3'), 60)
    queries = []
    for uid in {q.dashboard for q in panel_queries(stack.definitions)}:
        variables = default_variables(stack.definitions, uid, prom.query)
        queries += [(q, substitute(q.expr, SCRAPE, window, variables)) for q in panel_queries(stack.definitions, uid)]

    # The 30-day error budget sums recorded hourly rates at whole hours (catalog/slos.py): a
    # Prometheus started seconds ago has no such point until the next whole hour. Its rules
    # must still evaluate cleanly (checked below through the rules API).
    budget = [(q, e) for q, e in queries if q.panel_key == "error_budget_remaining"]
    queries = [(q, e) for q, e in queries if q.panel_key != "error_budget_remaining"]
    assert budget

    def empty():
        return [f"{q.dashboard}/{q.panel_key}[{q.ref}]: {expr}" for q, expr in queries if not prom.query(expr)]

    try:
        wait_for("every panel query to return data", lambda: not empty(), 60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {empty()}") from None
    assert len(queries) >= 19
    with urllib.request.urlopen(f"{prom.url}/api/v1/rules?type=record", timeout=10) as r:
        groups = json.loads(r.read())["data"]["groups"]
    budget_rules = [rule for g in groups if g["name"].endswith("-budget") for rule in g["rules"]]
    assert budget_rules and all(rule["health"] == "ok" and not rule.get("lastError") for rule in budget_rules), budget_rules
    time.sleep(3)  # a few more evaluations of every rule on healthy data
    assert active_alerts(prom) == []


def test_recorded_series_equal_their_raw_queries(stack):
    """At the instant a rule group was evaluated, each panel query on a recorded series
    and the raw-metric query it stands for (recording_rules `raw`) give the same series
    and values. Retried: a scrape landing between the rule evaluation and the raw query
    can shift one comparison."""
    prom = stack.prometheus
    raw, panels = {}, {}
    for uid in ("reward-operations", "reward-trust-safety"):
        raw |= {f"{uid}/{key}": q for key, q in recording_builders.raw_queries(stack.definitions, uid).items()
                if "offset" not in q["raw"]}
        panels |= {f"{uid}/{q.panel_key}[{q.ref}]": q.expr for q in panel_queries(stack.definitions, uid)}
    served = {s.panel for r in stack.definitions.recording_rules for s in r.serves if "offset" not in s.raw}
    assert raw and set(raw) == served and set(raw) <= set(panels)
    # The 30-day budgets have no point before the next whole hour (see the test above).
    raw = {key: q for key, q in raw.items() if not q["record"].endswith(":remaining30d")}
    mismatches: list[str] = []

    def as_map(result):
        # The recorded series carries its name; the raw query's result has none.
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1]) for r in result}

    def agree():
        mismatches.clear()
        latest = {name: prom.query(f"max(timestamp({name}))") for name in sorted({q["record"] for q in raw.values()})}
        # A group that has not evaluated yet (all groups start at a random offset
        # within their interval) has no point to compare at: wait for it.
        mismatches.extend(f"{name}: not evaluated yet" for name, result in latest.items() if not result)
        if mismatches:
            return False
        # Each recorded series against its raw query at that series' own last evaluation:
        # groups evaluate at different offsets, so one instant for all would compare a
        # group's previous point with the present.
        for key, q in raw.items():
            at = float(latest[q["record"]][0]["value"][1])
            recorded = as_map(prom.query(substitute(panels[key], SCRAPE, SCRAPE), at))
            direct = as_map(prom.query(substitute(q["raw"], SCRAPE, SCRAPE), at))
            if not recorded or set(recorded) != set(direct) or any(
                    abs(recorded[k] - direct[k]) > 1e-9 * max(1.0, abs(direct[k])) for k in direct):
                mismatches.append(f"{key}: recorded {recorded} vs raw {direct}")
        return not mismatches

    try:
        wait_for("recorded series to equal their raw queries", agree, 60, interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {mismatches}") from None


def runbook_queries(definitions) -> list:
    return [q for path in sorted((definitions.root / "runbooks").glob("*.md")) for q in promql_queries(path)]


def test_healthy_runbook_queries_that_should_be_empty_are_empty(stack):
    """Where a runbook says a query returns nothing when all is well, it does, on the
    healthy simulator (a query that always returned something would never tell on-call
    that a fault is gone)."""
    prom = stack.prometheus
    empty = [q for q in runbook_queries(stack.definitions) if q.expect_empty]
    assert len(empty) >= 3
    not_empty = {str(q): prom.query(q.expr) for q in empty if prom.query(q.expr)}
    assert not_empty == {}


def _fault_series(result: list[dict], target: dict) -> bool:
    """The result holds the fault's series: one whose labels match the fault's target on
    every target label the query keeps (an aggregation that drops them must be non-empty)."""
    if not result:
        return False
    kept = set().union(*(r["metric"] for r in result))
    wanted = {k: v for k, v in target.items() if k in kept}
    return any(wanted.items() <= r["metric"].items() for r in result)


def test_every_runbook_query_returns_its_faults_series_while_the_fault_is_on(stack):
    """With every fault on (each on its own pool, campaign or provider), each PromQL query
    of an alert's runbook section returns that alert's fault series; each query of a
    procedure returns data, but for those the runbook says are empty when all is well."""
    prom, sim = stack.prometheus, stack.sim
    sim.set_scenario(",".join(FAULTS))
    section_fault = {}
    for fault, alert in FAULTS.items():
        rule = stack.definitions.alert(alert)
        section_fault[(rule.runbook_file, rule.runbook_anchor)] = (fault, sim.target(fault))
    alert_sections = {(a.runbook_file, a.runbook_anchor) for a in stack.definitions.alerts}
    checks = []
    for q in runbook_queries(stack.definitions):
        key = (q.file, q.anchor)
        if key in section_fault:
            checks.append((q, section_fault[key][1]))
        elif key not in alert_sections and not q.expect_empty:
            checks.append((q, {}))
    assert {key for key in section_fault} <= {(q.file, q.anchor) for q, _ in checks}

    def failing():
        return [f"{q} (fault labels {target})" for q, target in checks if not _fault_series(prom.query(q.expr), target)]

    try:
        wait_for("every runbook query to return its fault's series", lambda: not failing() or None, 60, interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {failing()}") from None
    assert len(checks) >= 35


def test_a_paused_switch_shows_on_the_operator_switches_panel(stack):
    """An operator pauses a provider and holds a campaign's payouts (runbooks/actions.yaml):
    the Operator switches panel counts each, as Grafana queries it."""
    prom, sim = stack.prometheus, stack.sim
    queries = {q.ref: q for q in panel_queries(stack.definitions, "reward-operations") if q.panel_key == "paused_switches"}
    legends = [q.legend for p in stack.definitions.dashboard("reward-operations").panels if p.key == "paused_switches" for q in p.queries]
    count = dict(zip(legends, (queries[ref].expr for ref in sorted(queries)), strict=True))

    def value(legend: str) -> float:
        return float(prom.query(count[legend])[0]["value"][1])

    assert value("providers paused") == 0 and value("payouts held (campaigns)") == 0
    sim.set_switch("reward_provider_enabled", sim.providers[0], False)
    sim.set_switch("reward_campaign_payouts_enabled", sim.campaigns[0], False)
    try:
        wait_for("the paused switches on the panel", lambda: value("providers paused") == 1 and value("payouts held (campaigns)") == 1, 60)
        assert value("accrual paused (campaigns)") == 0 and value("claims paused (campaigns)") == 0
    finally:
        sim.set_switch("reward_provider_enabled", sim.providers[0], True)
        sim.set_switch("reward_campaign_payouts_enabled", sim.campaigns[0], True)


def test_each_fault_fires_its_alert_and_pages_the_right_receiver(stack):
    prom, sim = stack.prometheus, stack.sim
    sim.set_scenario(",".join(FAULTS))
    expected = {fault: (alert, sim.target(fault)) for fault, alert in FAULTS.items()}

    def missing():
        firing = [a for a in prom.alerts() if a["state"] == "firing"]
        return [f"{fault}: {alert} {labels}" for fault, (alert, labels) in expected.items()
                if not any(a["labels"]["alertname"] == alert and labels.items() <= a["labels"].items() for a in firing)]

    wait_for("every fault's alert to fire", lambda: not missing() or None, 60)

    severity = {a.name: a.severity for a in stack.definitions.alerts}
    runbook = stack.runbook_urls

    def undelivered():
        out = []
        for alert, _labels in expected.values():
            paths = ["/oncall", "/chat"] if severity[alert] == "critical" else ["/chat"]
            for path in paths:
                got = [a for a in stack.receiver.alerts(path) if a["labels"]["alertname"] == alert and a["status"] == "firing"]
                if not got:
                    out.append(f"{alert} -> {path}")
                elif got[0]["annotations"]["runbook_url"] != runbook[alert]:
                    out.append(f"{alert} -> {path}: runbook_url {got[0]['annotations']['runbook_url']}")
        return out

    wait_for("a notification per alert at its receiver(s)", lambda: not undelivered() or None, 60)
    # Warnings go to chat only; nothing routed to team=rewards reaches the catch-all.
    paged = {a["labels"]["alertname"] for a in stack.receiver.alerts("/oncall")}
    assert all(severity[name] == "critical" for name in paged), paged
    assert stack.receiver.alerts("/email") == []
    assert HEARTBEAT not in paged and HEARTBEAT not in {a["labels"]["alertname"] for a in stack.receiver.alerts("/chat")}
    # A one-campaign panel link opens on the campaign that fired (Prometheus expanded it).
    exhausted = next(a for a in stack.receiver.alerts("/oncall") if a["labels"]["alertname"] == "RewardPoolExhausted")
    assert exhausted["annotations"]["dashboard_url"].endswith(
        f"/d/reward-operations?viewPanel=23&var-campaign={exhausted['labels']['campaign_id']}")


def test_a_provider_outage_holds_back_that_providers_consequences(stack):
    """Inhibition in a real Alertmanager with the generated config. The outage
    provider's callers retry (blocked duplicates) and its reconciliation fails: both alerts
    fire in Prometheus for that provider, and Alertmanager holds them back (suppressed,
    inhibited by the outage) while the same alerts for other providers are delivered."""
    prom, sim = stack.prometheus, stack.sim
    down = sim.target("provider_outage")["provider"]
    others = {"RewardDuplicatePayoutAttempt": sim.target("duplicate_payout")["provider"],
              "RewardReconciliationStale": sim.target("reconciliation_stale")["provider"]}

    def firing(alert, provider):
        return any(a["labels"]["alertname"] == alert and a["labels"].get("provider") == provider and a["state"] == "firing"
                   for a in prom.alerts())

    wait_for("the outage's consequences to fire in Prometheus",
             lambda: all(firing(alert, down) for alert in others) or None, 60)

    def states():
        out = {}
        for a in alertmanager_alerts(stack):
            key = (a["labels"]["alertname"], a["labels"].get("provider"))
            out[key] = (a["status"]["state"], a["status"]["inhibitedBy"])
        return out

    def held_back():
        s = states()
        return all(s.get((alert, down), ("", []))[0] == "suppressed" and s[(alert, down)][1] for alert in others) or None

    def delivered() -> Counter:
        return Counter((a["labels"]["alertname"], a["labels"].get("provider"))
                       for path in ("/oncall", "/chat") for a in stack.receiver.alerts(path))

    wait_for("Alertmanager to hold back the outage provider's consequences", held_back, 60)
    # Inhibition holds a consequence back while its source fires in Alertmanager. The
    # faults start together, so under load a consequence can fire (and be sent once)
    # before the outage arrives, as it would in production within one group_wait: what
    # must not happen is a notification once the outage is there.
    before = delivered()
    s = states()
    assert s[("RewardPayoutProviderOutage", down)][0] == "active"
    for alert, provider in others.items():
        assert s[(alert, provider)] == ("active", []), (alert, provider, s.get((alert, provider)))
    time.sleep(3)  # several group_interval ticks: nothing held back may be sent meanwhile
    after = delivered()
    for alert, provider in others.items():
        assert after[(alert, down)] == before[(alert, down)], (alert, "sent while its provider's outage fired")
        assert after[(alert, provider)], alert


def test_the_heartbeat_reaches_only_its_dead_man_receiver(stack):
    def beats():
        return [a for a in stack.receiver.alerts("/heartbeat") if a["labels"]["alertname"] == HEARTBEAT]

    wait_for("the heartbeat at its dead-man receiver", beats, 60)
    assert {a["labels"]["alertname"] for a in stack.receiver.alerts("/heartbeat")} == {HEARTBEAT}
    assert all(a["labels"]["alertname"] != HEARTBEAT for path in ("/oncall", "/chat", "/email")
               for a in stack.receiver.alerts(path))


def test_events_tell_the_same_story_as_the_metrics(stack):
    sim = stack.sim
    with sim.lock:
        stack.events_file.flush()
        series = {name: dict(values) for name, values in sim.counters.items()}
        lines = stack.events_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events and all(set(EventSink.FIELDS) <= set(e) for e in events)
    types = Counter((e["stage"], e["type"], e.get("campaign_id"), e.get("provider")) for e in events)

    def by(stage, prefix, key) -> Counter:
        out = Counter()
        for t, n in types.items():
            if t[0] == stage and t[1].startswith(prefix) and key(t):
                out[key(t)] += n
        return out

    allocations = by("reward_allocation", "reward_allocation.", lambda t: (t[2], t[1].split(".", 1)[1]))
    assert {k: v for k, v in series["reward_allocations_total"].items() if v} == dict(allocations)
    claims = by("claim", "claim.requested", lambda t: (t[2],))
    assert {k: v for k, v in series["reward_claim_requests_total"].items() if v} == dict(claims)
    payouts = by("payout", "payout.", lambda t: (t[3], t[1].split(".", 1)[1]) if t[1] in ("payout.paid", "payout.failed", "payout.canceled") else None)
    assert {k: v for k, v in series["reward_payouts_total"].items() if v} == dict(payouts)
    # Prometheus scraped the same counters (up to the last scrape).
    scraped = stack.prometheus.query("sum(reward_allocations_total)")
    assert 0 < float(scraped[0]["value"][1]) <= sum(allocations.values())


def test_stopping_the_simulator_fires_the_dead_man_alert_and_pages(stack):
    prom = stack.prometheus
    stack.sim_server.stop()

    def firing():
        return [a for a in prom.alerts() if a["labels"]["alertname"] == METRICS_ABSENT_ALERT and a["state"] == "firing"]

    wait_for(f"{METRICS_ABSENT_ALERT} to fire", firing, 60)
    # Its runbook's Confirm queries tell the scrape is down: the target reports 0, and
    # (the target being still configured) absent() stays empty, as the runbook says.
    rule = stack.definitions.alert(METRICS_ABSENT_ALERT)
    confirm = [q for q in promql_queries(stack.definitions.root / "runbooks" / rule.runbook_file)
               if q.anchor == rule.runbook_anchor and q.part == "Confirm"]
    assert confirm
    for q in confirm:
        result = prom.query(q.expr)
        if q.expr.startswith("absent("):
            assert result == [], q
        else:
            assert result and all(float(r["value"][1]) == 0 for r in result), (q, result)
    runbook = stack.runbook_urls[METRICS_ABSENT_ALERT]
    wait_for(f"{METRICS_ABSENT_ALERT} to page on-call", lambda: [
        a for a in stack.receiver.alerts("/oncall")
        if a["labels"]["alertname"] == METRICS_ABSENT_ALERT and a["annotations"]["runbook_url"] == runbook], 60)
    # A missing scrape holds back what it makes stale. An alert on scraped series
    # that still reaches Alertmanager now (here posted by hand, as a rule evaluated on the
    # last samples would) is suppressed; the heartbeat, which reads no scraped series, is not.
    env = stack.config.environment
    late = [{"labels": {"alertname": "RewardPoolLow", "team": "rewards", "severity": "warning", "environment": env,
                        "pool_id": "pool-0002", "campaign_id": "camp-0002", "currency": "USDT"},
             "annotations": {"summary": "posted while the scrape is missing"}}]
    request = urllib.request.Request(f"{stack.alertmanager.url}/api/v2/alerts", data=json.dumps(late).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=10).close()

    def state(alert):
        return next(((a["status"]["state"], a["status"]["inhibitedBy"]) for a in alertmanager_alerts(stack)
                     if a["labels"]["alertname"] == alert), None)

    wait_for("the late alert to be held back by the missing scrape",
             lambda: (state("RewardPoolLow") or ("", []))[0] == "suppressed" or None, 60)
    assert state("RewardPoolLow")[1]
    assert state(HEARTBEAT) == ("active", [])
    time.sleep(3)
    assert not [a for a in stack.receiver.alerts("/chat") if a["annotations"].get("summary") == "posted while the scrape is missing"]
