"""Each class of bad definition or stack file, refused with its literal `file:field:
message`, exit 1 and nothing written (the property test in test_mutated_definitions.py
tries them at random; these pin the message of each class)."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from reward_obs.catalog.files import ecma_regex, load_yaml
from reward_obs.cli import main
from reward_obs.model.errors import MAX_MESSAGE, Problem

STACK = "Pulumi.selfhost.yaml"


def run(root: Path, *args: str, stack: str = STACK) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--root", str(root), "--stack-config", str(root / stack), *args])
    return code, err.getvalue()


def edit(root: Path, file: str, old, new) -> None:
    path = root / file
    if isinstance(old, bytes):
        data = path.read_bytes()
        assert old in data, (file, old)
        path.write_bytes(data.replace(old, new, 1))
    else:
        text = path.read_text(encoding="utf-8")
        assert old in text, (file, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


# (id, file, old, new, the problem line after "file:"). A stack file's problems are named
# by its path, so they are matched after it.
CASES = [
    # Bytes: "version: 1\n" is 11 bytes and "name: " 6 more, so the bad byte is byte 17.
    ("not-utf8", "alert_rules/RewardPoolLow.yaml", b"name: ", b"name: \xff",
     "alert_rules/RewardPoolLow.yaml:(file): not UTF-8 at byte 17"),
    ("stack-not-utf8", STACK, b"config:", b"\xc3(config:", "{stack}:(file): not UTF-8 at byte {offset}"),
    ("runbook-control-char", "runbooks/reward-pool-recovery.md", "# ", "#\x07 ",
     "runbooks/reward-pool-recovery.md:(file): line 1 contains the control or formatting character U+0007"),
    # YAML.
    ("duplicate-key", "alert_rules/RewardPoolLow.yaml", "severity: warning\n", "severity: warning\nseverity: critical\n",
     "alert_rules/RewardPoolLow.yaml:line 5: not valid YAML: duplicate key 'severity' (YAML would silently keep the last one)"),
    ("stack-duplicate-key", STACK, "  reward-observability:environment: selfhost\n",
     "  reward-observability:environment: selfhost\n  reward-observability:environment: prod\n",
     "{stack}:line {line}: not valid YAML: duplicate key 'reward-observability:environment' (YAML would silently keep the last one)"),
    ("stack-not-a-mapping", STACK, "config:", "- config:",
     "{stack}:(top level): must be a mapping with a `config:` key (a Pulumi stack file)"),
    ("stack-config-not-a-mapping", STACK, "config:\n", "config: 3\nrest:\n",
     "{stack}:config: must be a mapping of `namespace:key: value`"),
    ("yaml-date", "alert_rules/RewardPoolLow.yaml", "for: 10m", "for: 2024-01-01",
     "alert_rules/RewardPoolLow.yaml:for: is a YAML date, not a JSON value: quote it"),
    ("infinite-number", "alert_rules/RewardPoolLow.yaml", "threshold: 0.1}", "threshold: 1.0e+400}",
     "alert_rules/RewardPoolLow.yaml:condition.threshold: is not a finite number"),
    ("huge-integer", "alert_rules/RewardPoolLow.yaml", "threshold: 0.1}", "threshold: 100000000000000000000}",
     "alert_rules/RewardPoolLow.yaml:condition.threshold: is out of range (at most 9007199254740992 in magnitude)"),
    ("long-string", "alert_rules/RewardPoolLow.yaml", "no_data_state: OK", "no_data_state: " + "A" * 10_001,
     "alert_rules/RewardPoolLow.yaml:no_data_state: is 10001 characters long; at most 10000"),
    # A trailing newline must not pass a `^...$` pattern (ECMA-262 `$`).
    ("trailing-newline", STACK, "reward-observability:environment: selfhost", 'reward-observability:environment: "selfhost\\n"',
     "{stack}:reward-observability:environment: 'selfhost\\n' does not match '^[a-z][a-z0-9-]{1,30}$'"),
    ("chat-id-trailing-newline", STACK, 'telegramChatId: "-1001234567890"', 'telegramChatId: "-1001234567890\\n"',
     "{stack}:reward-observability:telegramChatId: '-1001234567890\\n' does not match '^-?[0-9]{5,20}$'"),
    # URLs.
    ("url-query", STACK, "grafanaUrl: http://127.0.0.1:3000", "grafanaUrl: http://127.0.0.1:3000/?orgId=1",
     "{stack}:reward-observability:grafanaUrl: is a base URL: it must not have a query (?...), paths are appended to it"),
    ("url-fragment", STACK, "adminBaseUrl: http://127.0.0.1:8081/admin", "adminBaseUrl: http://127.0.0.1:8081/admin#x",
     "{stack}:reward-observability:adminBaseUrl: is a base URL: it must not have a fragment (#...), paths are appended to it"),
    ("url-port", STACK, "grafanaUrl: http://127.0.0.1:3000", "grafanaUrl: http://127.0.0.1:70000",
     "{stack}:reward-observability:grafanaUrl: has a port that is not a number from 1 to 65535"),
    ("url-credentials", STACK, "grafanaUrl: http://127.0.0.1:3000", "grafanaUrl: http://admin:" + "pw@grafana.example",
     None),  # the schema's pattern already refuses '@'; the check below names the key
    # Written as a YAML escape, so the text of the file is clean and the value carries it.
    ("url-bidi", STACK, "runbookBaseUrl: https://github.com/elmental/reward-observability/blob/main",
     'runbookBaseUrl: "https://github.com/\\u202eelmental"',
     "{stack}:reward-observability:runbookBaseUrl: contains the control or formatting character U+202E"),
    # Contact points read one stack key each, of their own kind.
    ("config-names-another-key", "notifications/routing.yaml", "chat_id: telegramChatId", "chat_id: grafanaUrl",
     "notifications/routing.yaml:contact_points[1].config.chat_id: 'telegramChatId' was expected"),
    ("email-as-chat-id", "notifications/routing.yaml", "chat_id: telegramChatId", "chat_id: emailAddresses",
     "notifications/routing.yaml:contact_points[1].config.chat_id: 'telegramChatId' was expected"),
    ("negative-max-alerts", "notifications/routing.yaml", "max_alerts: 50", "max_alerts: -50",
     "notifications/routing.yaml:contact_points[0].settings.max_alerts: -50 is less than the minimum of 0"),
    ("http-method", "notifications/routing.yaml", "http_method: POST", "http_method: GET",
     "notifications/routing.yaml:contact_points[0].settings.http_method: 'GET' is not one of ['POST', 'PUT']"),
    ("zero-repeat-interval", "notifications/routing.yaml", "repeat_interval: 5m", "repeat_interval: 0s",
     "notifications/routing.yaml:policy.routes[0].repeat_interval: must be longer than 0s: Alertmanager refuses a zero repeat_interval"),
    # Durations Go cannot hold: 99999999999h is about 11.4 million years.
    ("for-overflow", "alert_rules/RewardPoolLow.yaml", "for: 10m", "for: 99999999999h",
     "alert_rules/RewardPoolLow.yaml:for: is longer than Go's largest duration (about 292 years, 9223372036s)"),
    ("override-for-overflow", STACK, "reward-observability:rewardsLive: false",
     "reward-observability:rewardsLive: false\n  reward-observability:alertOverrides: {RewardPoolLow: {for: 99999999999h}}",
     "{stack}:reward-observability:alertOverrides.RewardPoolLow.for: is longer than Go's largest duration (about 292 years, 9223372036s)"),
    ("zero-scrape-interval", STACK, "scrapeInterval: 30s", "scrapeInterval: 0s",
     "{stack}:reward-observability:scrapeInterval: must be longer than 0s (Prometheus refuses a zero scrape_interval)"),
    # SLO: 1 - 0.99999999999 = 1e-11, which SLO.budget rounds (10 decimals) to 0.
    ("budget-rounds-to-zero", "slos/payout-success.yaml", "target: 0.999", "target: 0.99999999999",
     "slos/payout-success.yaml:spec.objectives[0].target: leaves an error budget of 1e-11, which rounds to 0: the burn-rate "
     "rules divide by the budget; choose an objective with at most ten decimals of budget"),
    # Dashboards: Grafana's null step is the base (-Infinity) only; later steps ascend.
    ("null-threshold-step", "dashboards/reward-operations.yaml", "- {value: 1, color: green}", "- {value: null, color: green}",
     "dashboards/reward-operations.yaml:rows[0].panels[0].thresholds[1].value: None is not of type 'number'"),
    ("threshold-order", "dashboards/reward-operations.yaml", "- {value: 0.999, color: green}", "- {value: 0.9, color: green}",
     "dashboards/reward-operations.yaml:rows[0].panels[3].thresholds: steps after the base must ascend: Grafana sorts them, "
     "so another order colours values wrongly"),
    ("transformation-option", "dashboards/reward-trace.yaml", "{operation: groupby}", "{operation: groupby, extra: 1}",
     "dashboards/reward-trace.yaml:rows[1].panels[0].transformations[1].options.fields.stage: Additional properties are not "
     "allowed ('extra' was unexpected)"),
    ("transformation-id", "dashboards/reward-trace.yaml", "id: sortBy", "id: sortByX",
     "dashboards/reward-trace.yaml:rows[1].panels[0].transformations[2].id: 'sortByX' is not one of "
     "['extractFields', 'organize', 'groupBy', 'sortBy']"),
    ("aggregation", "dashboards/reward-trace.yaml", "aggregations: [firstNotNull, lastNotNull]", "aggregations: [firstNotNull, sum2]",
     "dashboards/reward-trace.yaml:rows[1].panels[0].transformations[1].options.fields.Time.aggregations[1]: 'sum2' is not one of"),
]


@pytest.mark.parametrize("file,old,new,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_definition_is_refused_with_its_field(repo_copy, tmp_path, file, old, new, expected):
    stack = repo_copy / STACK
    original = stack.read_bytes()
    edit(repo_copy, file, old, new)
    out = tmp_path / "out"
    code, err = run(repo_copy, "validate")
    assert code == 1 and "Traceback" not in err
    render_code, render_err = run(repo_copy, "render", "--out", str(out))
    assert render_code == 1 and not out.exists(), "render must refuse what validate refuses, writing nothing"
    if expected is None:
        assert f"{stack}:reward-observability:grafanaUrl: " in err
        return
    offset = original.index(b"config:") if isinstance(old, bytes) else 0
    line = next((i + 1 for i, text in enumerate(stack.read_text(errors="replace").splitlines())
                 if text.strip() == "reward-observability:environment: prod"), 0)
    expected = expected.replace("{stack}", str(stack)).replace("{offset}", str(offset)).replace("{line}", str(line))
    assert any(row.startswith(f"  {expected}") for row in err.splitlines()), err


def test_an_alias_bomb_is_refused_without_echoing_its_expansion(repo_copy):
    # 9^8 = 43 million values if expanded; the loader measures the node graph instead.
    bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    path = repo_copy / "alert_rules" / "RewardPoolLow.yaml"
    path.write_text(path.read_text() + bomb)
    code, err = run(repo_copy, "validate")
    assert code == 1
    assert "  alert_rules/RewardPoolLow.yaml:(file): not valid YAML: expands to more than 50000 values (aliases included)" \
        in err.splitlines()
    assert len(err) < 5_000 and "lol" not in err


def test_a_recursive_alias_is_refused(repo_copy):
    path = repo_copy / "alert_rules" / "RewardPoolLow.yaml"
    path.write_text(path.read_text() + "loop: &loop [*loop]\n")
    code, err = run(repo_copy, "validate")
    assert code == 1
    assert "  alert_rules/RewardPoolLow.yaml:(file): not valid YAML: nested deeper than 32 levels (or a recursive alias)" \
        in err.splitlines()


def test_render_refuses_what_the_checks_refuse(repo_copy, tmp_path):
    # The heartbeat route groups every 1m; repeating every 30s is shorter than a group tick,
    # which the lint refuses (repeat-interval). Before, render wrote it anyway.
    edit(repo_copy, "notifications/routing.yaml", "repeat_interval: 5m", "repeat_interval: 30s")
    out = tmp_path / "out"
    code, err = run(repo_copy, "render", "--out", str(out))
    assert code == 1 and not out.exists()
    assert "reward-obs render: the checks failed; nothing was written" in err
    assert any(line.startswith("notifications/routing.yaml:policy.routes[0]: repeat-interval: repeat_interval 30s is shorter")
               for line in err.splitlines()), err


# ECMA-262 (JSON Schema's regex dialect): `$` without the m flag matches only at the end of
# the input, `\d` is [0-9] and `\w` is [A-Za-z0-9_]; Python's `re` differs on all three.
@pytest.mark.parametrize("pattern,text,matches", [
    ("^[a-z]+$", "prod", True),
    ("^[a-z]+$", "prod\n", False),
    ("^-?[0-9]{5,20}$", "-1001234567890\n", False),
    (r"^\d+$", "123", True),
    (r"^\d+$", "١٢٣", False),  # Arabic-Indic digits: \d in Python, not in ECMA-262
    (r"^\w+$", "é", False),
    (r"^[\d.]+$", "1.5", True),
    (r"^a\$$", "a$", True),  # an escaped dollar stays a literal
    ("^[$a]+$", "$a", True),  # so does one inside a class
])
def test_patterns_have_their_ecma_meaning(pattern, text, matches):
    assert bool(ecma_regex(pattern).search(text)) is matches


def test_a_problem_never_carries_an_unbounded_message():
    problem = Problem("f.yaml", "x" * 1000, "y" * 100_000)
    assert len(problem.message) == MAX_MESSAGE and problem.message.endswith("…")
    assert len(str(problem)) < 700


@pytest.mark.parametrize("text,message", [
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("a: &x [1]\nb: *x\nb: 2\n", "duplicate key 'b'"),
])
def test_the_loader_refuses_duplicate_keys(text, message):
    with pytest.raises(Exception, match=re.escape(message)):
        load_yaml(text)


def test_the_loader_keeps_aliases_that_stay_small():
    assert load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
