"""Helpers the tests share: reading a rendered tree as Grafana and Prometheus would, seeing
through recorded series, writing simulator history as OpenMetrics, the runbooks' queries,
the Telegram message rendered by amtool, the dashboards' signal panels, and fixed test
values. Test modules import from here (and from spec.py, the requirements), never from
one another."""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from reward_obs.catalog.config import read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.checks.lint import render_template
from reward_obs.lang import promql
from reward_obs.lang.markdown import sections
from reward_obs.model.definitions import RecordingRule
from reward_obs_dev.simulator import Simulator

from conftest import ROOT, STACK_FILE, run_cli
from spec import REQUIRED_SIGNALS, SIGNAL_DASHBOARDS

# ---------------------------------------------------------------- a rendered tree

@functools.lru_cache(maxsize=16)
def _parsed(path: str, stamp: tuple[int, int, int]):
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def read_yaml(path: Path):
    """A rendered YAML file, parsed once per version of the file (the per-alert tests read
    the same rule files forty times); a copy, so a test may change what it gets."""
    stat = path.stat()
    return copy.deepcopy(_parsed(str(path), (stat.st_mtime_ns, stat.st_size, stat.st_ino)))


def grafana_rules(out: Path) -> dict[str, dict]:
    data = read_yaml(out / "grafana/provisioning/alerting/rules.yaml")
    return {rule["title"]: {**rule, "group": group["name"], "folder": group["folder"]}
            for group in data["groups"] for rule in group["rules"]}


def prometheus_rules(out: Path) -> dict[str, dict]:
    data = read_yaml(out / "prometheus/reward-alerts.rules.yaml")
    return {rule["alert"]: {**rule, "group": group["name"]} for group in data["groups"] for rule in group["rules"]}


def dashboard(out: Path, uid: str) -> dict:
    [path] = (out / "grafana/dashboards").glob(f"*/{uid}.json")  # one directory per folder
    return json.loads(path.read_text())


def panels(dashboard_json: dict) -> list[dict]:
    return [p for p in dashboard_json["panels"] if p["type"] != "row"]


# ---------------------------------------------------------------- recorded series

def raw_selectors(expr: str, rules: tuple[RecordingRule, ...]) -> list[promql.Selector]:
    """The raw-metric selectors a query reads, seeing through recorded series: a selector
    of a recorded series stands for its rule's selectors, each with the query's matchers
    added (they match labels the rule keeps, so they narrow the same series)."""
    by_name = {r.record: r for r in rules}
    out = []
    for sel in promql.selectors(promql.parse(promql.without_grafana_variables(expr))):
        rule = by_name.get(sel.metric)
        if rule is None:
            out.append(sel)
            continue
        out += [dataclasses.replace(inner, matchers=tuple(dict.fromkeys(inner.matchers + sel.matchers)))
                for inner in raw_selectors(rule.expr, rules)]
    return out


RECORDING_RULES = load_definitions(ROOT).recording_rules


def panel_selectors(panel: dict) -> list:
    """Raw-metric selectors of a panel's PromQL queries, seeing through recorded series
    (LogQL panels have none)."""
    return [s for t in panel["targets"] if t["datasource"]["type"] == "prometheus"
            for s in raw_selectors(t["expr"], RECORDING_RULES)]


def reads(panel: dict, signal: str) -> bool:
    metric, matchers = REQUIRED_SIGNALS[signal]
    return any(sel.metric == metric and matchers <= set(sel.matchers) for sel in panel_selectors(panel))


def signal_panels(boards: dict[str, dict]) -> dict[str, list[str]]:
    """Signal -> "dashboard uid/panel title" of the panels of its own dashboard that read it."""
    return {signal: [f"{uid}/{panel['title']}" for panel in panels(boards[uid]) if reads(panel, signal)]
            for signal, uid in SIGNAL_DASHBOARDS.items()}


def distinct_assignment(found: dict[str, list[str]]) -> dict[str, str] | None:
    """Give every signal a panel of its own (a matching), or None if impossible."""
    signals = sorted(found, key=lambda s: len(found[s]))

    def assign(index: int, used: dict[str, str]) -> dict[str, str] | None:
        if index == len(signals):
            return dict(used)
        for title in found[signals[index]]:
            if title not in used.values():
                used[signals[index]] = title
                result = assign(index + 1, used)
                if result:
                    return result
                del used[signals[index]]
        return None

    return assign(0, {})


# ---------------------------------------------------------------- simulator history

def write_openmetrics(sim: Simulator, out: IO[str], start: float, end: float, step: float,
                      extra_labels: dict[str, str] | None = None, only: set[str] | None = None,
                      sim_step: float | None = None) -> int:
    """Run the simulator from `start` to `end` and write every series every `step`
    seconds as OpenMetrics with timestamps, for `promtool tsdb create-blocks-from
    openmetrics`. `extra_labels` are the target labels a scrape would add. Returns the
    number of samples written."""
    sim.now = start
    extra = "".join(f',{k}="{v}"' for k, v in sorted((extra_labels or {}).items()))
    prefixes: dict[tuple[str, tuple], str] = {}
    written = 0
    t = start
    while t <= end:
        for name, values in sim.series().items():
            if only is not None and name not in only:
                continue
            names = sim.label_names(name)
            lines = []
            for key, value in values.items():
                prefix = prefixes.get((name, key))
                if prefix is None:
                    body = ",".join(f'{n}="{v}"' for n, v in zip(names, key, strict=True)) + extra
                    prefix = prefixes[(name, key)] = f"{name}{{{body.lstrip(',')}}} "
                lines.append(f"{prefix}{value:.10g} {t:.3f}\n")
            out.write("".join(lines))
            written += len(lines)
        sim.step(sim_step if sim_step is not None else step)
        t += step
    out.write("# EOF\n")
    return written


# ---------------------------------------------------------------- runbook queries

# The line before a query says the query must come back empty on a healthy system.
_EXPECT_EMPTY = re.compile(r"(?:must|should) (?:return nothing|be empty)|\breturns nothing\b", re.IGNORECASE)


@dataclass(frozen=True)
class RunbookQuery:
    file: str
    anchor: str  # the `## ` section
    part: str  # the `### ` part
    index: int  # 1-based, among the section's PromQL blocks
    expr: str
    expect_empty: bool  # the runbook says it returns nothing when all is well

    def __str__(self) -> str:
        return f"{self.file}#{self.anchor} {self.part} promql {self.index}: {self.expr}"


def promql_queries(path: Path) -> list[RunbookQuery]:
    """Every fenced PromQL query of a runbook, with where it is and what it should return."""
    out = []
    for section in sections(path):
        index = 0
        for part, body in section.parts.items():
            before = ""
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                line = lines[i]
                if line.startswith("```"):
                    lang = line[3:].strip()
                    end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
                    if lang == "promql":
                        index += 1
                        out.append(RunbookQuery(path.name, section.anchor, part, index, "\n".join(lines[i + 1:end]).strip(),
                                                bool(_EXPECT_EMPTY.search(before))))
                    i = end + 1
                    continue
                if line.strip():
                    before = line
                i += 1
    return out


# ---------------------------------------------------------------- the Telegram message

TEMPLATE = ROOT / "notifications/templates/reward.tmpl"


def sample_alert(i: int, status: str = "firing", summary: str | None = None) -> dict:
    base = "https://runbooks.reward-observability.invalid/elmental/reward-observability/blob/main"
    return {
        "status": status,
        "labels": {"alertname": "RewardPayoutProviderOutage", "severity": "critical", "provider": f"p{i}"},
        "annotations": {
            "summary": summary or f"Payout provider ton_wallet <{i}> & friends are down",
            "runbook_url": f"{base}/runbooks/payout-provider-retry.md#rewardpayoutprovideroutage",
            "dashboard_url": f"https://grafana.reward-observability.invalid/d/reward-operations?viewPanel=14&x={i}",
        },
        "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{i:016x}",
    }


def render_message(alerts: list[dict], name: str = "reward.message") -> str:
    """The template rendered by amtool, through the same call `reward-obs lint` makes."""
    return render_template([TEMPLATE], name, {
        "receiver": "rewards-telegram", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "RewardPayoutProviderOutage"},
        "commonLabels": {"alertname": "RewardPayoutProviderOutage"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid"})


# ---------------------------------------------------------------- fixed test values


def stack_values() -> dict:
    """The example stack's config values (Pulumi.selfhost.yaml)."""
    return read_stack_file(STACK_FILE)


# Built at run time so the repository itself never holds a token-shaped string.
SECRETS = {"telegramBotToken": "70123" + "45678:" + "AAH" + "m" * 32, "oncallWebhookUrl": "https://paging.invalid/hook/" + "s" * 24,
           "heartbeatWebhookUrl": "https://deadman.invalid/ping/" + "h" * 24}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value

WEIRD_VALUES = [
    None, True, False, 0, 1, 1.0, -1, 2, 1.5, "", " ", "x", "1", [], {}, ["evt_abcdefgh"], {"a": 1},
    "evt_abcdefgh", "evt_abc", "evt_" + "a" * 41, "cor_abcdefgh", "cor_abcdefgh\n", "cor_ABCdef123", "cor_abc-defgh",
    "2025-11-20T18:04:11Z", "2025-11-20T18:04:11.1234567891Z", "2025-13-20T18:04:11Z", "2025-11-20 18:04:11Z",
    "2025-11-20T24:00:00Z", "12.5", "-0.000000000000000001", "1e5", "12.", ".5", "TON", "SP", "ton", "USDT",
    "payout", "claim", "admin_audit", "payout.paid", "claim.paid", "payout.Paid", "admin_audit.x",
    "paid", "pending", "ton_wallet", "manual", "provider_retry", "finance", "support", "hold_claim", "ab",
    "cmp_winter_cup", "a" * 64, "a" * 65, "ref/with:odd.chars-ok", "-leading",
]


# ---------------------------------------------------------------- repository copies

def render_repo(root: Path, out: Path, stack: Path | None = None) -> Path:
    result = run_cli("--root", str(root), "--stack-config", str(stack or root / "Pulumi.selfhost.yaml"), "render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def plain_text(value) -> str:
    """Everything in the inputs except values wrapped as Pulumi secrets."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return ""
        return " ".join(plain_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(plain_text(v) for v in value)
    return str(value)
