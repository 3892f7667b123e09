"""The Telegram message stays sendable whatever the label values: rendered by Alertmanager's
own template engine (amtool) from 5 firing and 3 resolved alerts whose labels and
annotations are 300 hostile characters, it fits both limits and is HTML Telegram accepts.

The two limits, from their sources (not from the template):
- Grafana cuts the message at 4,096 runes before sending, anywhere, even inside a tag
  (grafana/alerting receivers/telegram/telegram.go: TruncateInRunes(...,
  telegramMaxMessageLenRunes = 4096)). Python's len() counts code points, as Go runes do.
- Telegram takes "1-4096 characters after entities parsing" (Bot API, sendMessage `text`),
  and measures text in UTF-16 code units (Bot API, MessageEntity: "offset in UTF-16 code
  units"): tags and href values are not text, an entity is one character, an emoji two.
The HTML rules are Telegram's (Bot API, "HTML style"): only its tags; every <, > and & that
is not part of a tag or an entity escaped; of named entities only &lt; &gt; &amp; &quot;,
and any numeric one.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from reward_obs.checks.lint import render_template

from conftest import ROOT

TEMPLATE = ROOT / "notifications/templates/reward.tmpl"
LIMIT = 4096

# 300 characters of each kind that attacks the message: escaping growth (& and quotes become
# five characters), tag injection, astral-plane emoji (two UTF-16 units each), multi-byte
# and combining characters, and all of them mixed.
HOSTILE = {
    "ampersands": "&" * 300,
    "quotes": ('"' + "'") * 150,
    "tags": '<a href="x"></b>' * 18 + "<b>" * 4,
    "emoji": "\U0001F525" * 300,
    "multibyte": ("\u0416\u4e2d\u00e9e\u0301") * 60,
    "mixed": ("&<>\"'\U0001F525\u4e2d" + "x") * 37 + "&<>\"",
}


def test_every_hostile_value_is_300_characters():
    assert {name: len(value) for name, value in HOSTILE.items()} == {name: 300 for name in HOSTILE}


def _alert(value: str, status: str, i: int) -> dict:
    return {
        "status": status,
        "labels": {"alertname": value, "severity": value, "campaign_id": value, "provider": value},
        "annotations": {"summary": value, "description": value, "runbook_url": value, "dashboard_url": value},
        "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{i:016x}",
    }


def render(alerts: list[dict], name: str = "reward.message") -> str:
    common = alerts[0]["labels"] if alerts else {}
    return render_template([TEMPLATE], name, {
        "receiver": "rewards-telegram", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": common.get("alertname", "")}, "commonLabels": common, "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid"})


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Telegram(HTMLParser):
    """Parses a message the way Telegram's HTML mode is documented to: collects the text
    after entity parsing and every rule the message breaks."""

    TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.errors, self.open = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.TAGS:
            self.errors.append(f"<{tag}> is not a Telegram tag")
        if tag == "a" and [name for name, _ in attrs] != ["href"]:
            self.errors.append(f"<a> with attributes {attrs}")
        self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"</{tag}> closes nothing open")

    def handle_data(self, data):
        self.text.append(data)


ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
TAG = re.compile(r'</?(b|a)>|<a href="[^"<>]*">')


def telegram_problems(message: str) -> list[str]:
    parser = _Telegram()
    parser.feed(message)
    parser.close()
    problems = parser.errors + [f"<{tag}> never closed" for tag in parser.open]
    # Outside the tags this template writes, no raw < or >, and every & starts an entity.
    rest = TAG.sub("", message)
    problems += [f"raw {c!r} outside a tag" for c in "<>" if c in rest]
    if "&" in ENTITY.sub("", rest):
        problems.append("an & that starts no entity Telegram knows (a cut or unescaped one)")
    return problems


def visible_text(message: str) -> str:
    parser = _Telegram()
    parser.feed(message)
    parser.close()
    return "".join(parser.text)


@pytest.mark.parametrize("kind", HOSTILE)
def test_5_firing_and_3_resolved_hostile_alerts_fit_and_are_valid_telegram_html(kind):
    value = HOSTILE[kind]
    message = render([_alert(value, "firing", i) for i in range(5)] + [_alert(value, "resolved", 10 + i) for i in range(3)])
    assert message.count("Runbook</a>") == 5 and message.count("Dashboard panel</a>") == 5  # every alert is there
    assert "<b>Firing: 5</b>" in message and "<b>Resolved: 3</b>" in message
    assert len(message) <= LIMIT, f"{len(message)} runes: Grafana would cut the message, tags included"
    assert 1 <= utf16_units(visible_text(message)) <= LIMIT
    assert telegram_problems(message) == []


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_larger_group_lists_5_and_3_and_still_fits(kind):
    value = HOSTILE[kind]
    message = render([_alert(value, "firing", i) for i in range(50)] + [_alert(value, "resolved", 100 + i) for i in range(30)])
    assert "(5 of 50 shown; all are on the dashboard)" in message and "(3 of 30 shown)" in message
    assert len(message) <= LIMIT and utf16_units(visible_text(message)) <= LIMIT
    assert telegram_problems(message) == []


@pytest.mark.parametrize("kind", HOSTILE)
def test_the_title_of_hostile_alerts_is_escaped_and_bounded(kind):
    title = render([_alert(HOSTILE[kind], "firing", 0)], "reward.title")
    assert title.startswith("[FIRING] ") and len(title) <= len("[FIRING] ") + 40
    assert telegram_problems(title) == []


def test_values_are_cut_before_escaping_so_no_entity_is_split():
    # 300 ampersands: cut to 200 characters, escaped to 1,000, cut back to 220 characters
    # = 44 whole entities; a cut after escaping alone would leave "&am" at the end.
    message = render([_alert("&" * 300, "firing", 0)])
    summary = message.split("\n")[2]
    assert summary == "&amp;" * 44
    # An ordinary value is cut by characters, never inside one: 300 emoji keep 200 emoji.
    message = render([_alert("\U0001F525" * 300, "firing", 0)])
    assert message.split("\n")[2] == "\U0001F525" * 200


def test_ordinary_alert_text_is_not_cut():
    """The limits leave room for the longest real values: a 200-character summary with some
    characters to escape, a long alert name, the longest runbook link the example stacks render."""
    summary = ("Pool p-12 of campaign <spring-cup> & friends is over-allocated by 1.2k TON. Allocation goes on while "
               "the pool is over its budget: hold new campaigns until finance tops it up or closes it for good now.")[:200]
    assert len(summary) == 200
    runbook = "https://github.com/elmental/reward-observability/blob/main/runbooks/payout-dispute-handling.md#rewardreconciliationmismatch"
    dashboard = "https://grafana.elmental.example/d/reward-operations?viewPanel=25&var-campaign=spring-cup-2026"
    alert = {"status": "firing", "labels": {"alertname": "RewardPayoutReconciliationBudgetBurnFast", "severity": "critical"},
             "annotations": {"summary": summary, "runbook_url": runbook, "dashboard_url": dashboard},
             "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "1"}
    message = render([alert])
    assert "<b>RewardPayoutReconciliationBudgetBurnFast</b> (critical)" in message
    assert summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in message
    assert f'<a href="{runbook}">Runbook</a>' in message
    assert f'<a href="{dashboard.replace("&", "&amp;")}">Dashboard panel</a>' in message


def test_no_alert_name_is_cut(definitions, config):
    """The message cuts names at 40 characters (reward.cut.label): every alert this stack
    defines, SLO burn-rate alerts included, is shown whole."""
    from reward_obs.builders.alerts import resolved_alerts

    names = [a.name for a in resolved_alerts(definitions, config)]
    assert len(names) > 20 and max(map(len, names)) <= 40
