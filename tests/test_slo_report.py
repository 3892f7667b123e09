"""`reward-obs slo report` on a real Prometheus backfilled with a week whose every number is
known: one provider paying 20 payouts a minute, 1 in 2,000 failing, and one 30-minute
outage failing every payout. The report's numbers are checked against arithmetic done by
hand (below, with the Prometheus semantics it rests on), never against the tool itself."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reward_obs.tools import slo_report
from reward_obs_dev.servers import Prometheus, backfill, backfill_recording_rules

from conftest import run_cli

MIN = 60
PROVIDER = "crypto"
TARGET = 'job="rewards",instance="backend:9100"'
PER_MINUTE = 20  # payouts reaching a final state each minute, whatever happens
# The world, minute by minute. Samples at t_i = T0 + 60 i, i = 0 .. 11,520 (8 days); the
# counters' increase between t_(i-1) and t_i is "increment i". Increment i fails all 20
# payouts for i in OUTAGE (30 minutes), one of 20 when i % 100 == 50 (1 in 2,000: 0.05%,
# half the 99.9% objective's budget), none otherwise.
OUTAGE = range(6601, 6631)
SAMPLES = 11_520
FROM_I, TO_I = 1_440, 11_520  # the reported week: day 1 to day 8 (a day of history before it)


def increment(i: int) -> tuple[int, int]:
    """(paid, failed) in increment i."""
    if i in OUTAGE:
        return 0, PER_MINUTE
    if i % 100 == 50:
        return PER_MINUTE - 1, 1
    return PER_MINUTE, 0


# ---- Hand arithmetic (Prometheus 2.x: a range [t - r, t] holds the samples at both ends).
# Period: rate(...[7d]) at t_11520 spans samples t_1440 .. t_11520, increments 1441 .. 11520:
#   total = 20 * 10,080                                   = 201,600
#   bad   = 101 single failures (1450, 1550, ..., 11450) + 30 * 20 = 701
#   attained        = 1 - 701 / 201,600                   = 0.99652282 (200,899 / 201,600)
#   budget consumed = (701 / 201,600) / 0.001             = 3.4771825
#   suggested: 95% upper bound of 701 Poisson events (Wilson-Hilferty) ~ 746.2;
#   2 * 746.2 / 201,600 = 0.74% of budget needed: 99.5% (0.5%) is too tight, 99% (1%) fits.
TOTAL, BAD = 201_600, 701
ATTAINED, CONSUMED, SUGGESTED = 0.99652282, 3.4771825, 0.99
# Prometheus 3 leaves the sample at t - r out (increments 1442 .. 11520: total 201,580), so
# the ratios move by < 4e-7 and every firing edge below by at most one minute.
RATIO_TOLERANCE = 1e-6
# Pages, from the outage's start T_s = t_6600 (its first failed increment ends at t_6601):
#   1h tier (14.4x = 1.44% over 1h, unless 5m <= 1.44%; >= 3 bad in 1h):
#     first t_6601: 1h holds increments 6542..6601, 20 + 1 (6550) bad of 1,200 = 1.75%;
#     5m holds 6597..6601: 20 of 100.
#     last t_6634: the 5m window holds increment 6630 (20 of 100); at t_6635 it holds none.
#     peak: 1h windows wholly over the outage, 600 of 1,200 = 50% = 500x a 0.1% budget.
#   6h tier (6x = 0.6% over 6h, unless 30m <= 0.6%): the 6h and 30m ratios average the 5m
#     rate at 5-minute-aligned points p, each covering increments p-4..p, so every failure
#     counts once, at the first aligned point at or after it.
#     first t_6605: point 6605 brings 100 outage failures; 6h: (100 + 4) / (73 * 100) = 1.4%.
#     last t_6660: the 30m window's points 6630..6660 still hold 6626..6630 (100 of 700);
#     at t_6661 its points 6635..6660 hold 1 failure in 600 = 0.17%.
PAGES = {"1h": (6601, 6634), "6h": (6605, 6660)}
PEAK_1H = 500.0
# Tickets: 1d and 3d average the 1h rate at hour-aligned points; the outage (6601..6630)
# first counts at point 6660.
#   1d tier (3x = 0.3%, unless 2h <= 0.3%; >= 20 bad in 1d): first t_6660 (1d: ~615 bad of
#     25 * 1,200); last t_6750: the 2h window's points 6630..6750 hold 100 + 2 of 2,500;
#     at t_6751 points 6635..6750 hold 2 of 2,400 = 0.08%.
#   3d tier (1x = 0.1%, unless 6h <= 0.1%): first t_6660 (3d: 644 of 73 * 1,200 = 0.74%);
#     last t_6990: the 6h window's points 6630..6990 hold 100 + 4 of 7,300; at t_6991 its
#     points 6635..6990 hold 4 of 7,200 = 0.056%.
TICKETS = {"1d": (6660, 6750), "3d": (6660, 6990)}
STEP_TOLERANCE = MIN  # the evaluation step


def write_week(path: Path, t0: int) -> None:
    """Every failed payout is the platform's (cause provider_error), so the payout SLO,
    which counts only the platform's failures, counts each of them."""
    paid = failed = 0
    payouts = ["# HELP reward_payouts_total Payouts that reached a final state.", "# TYPE reward_payouts_total counter"]
    failures = ["# HELP reward_payout_failures_total Failed payouts by cause.", "# TYPE reward_payout_failures_total counter"]
    for i in range(SAMPLES + 1):
        if i:
            p, f = increment(i)
            paid, failed = paid + p, failed + f
        t = t0 + i * MIN
        payouts.append(f'reward_payouts_total{{{TARGET},provider="{PROVIDER}",result="paid"}} {paid} {t}')
        payouts.append(f'reward_payouts_total{{{TARGET},provider="{PROVIDER}",result="failed"}} {failed} {t}')
        failures.append(f'reward_payout_failures_total{{{TARGET},provider="{PROVIDER}",cause="provider_error"}} {failed} {t}')
    path.write_text("\n".join(payouts + failures) + "\n# EOF\n", encoding="utf-8")


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """A Prometheus holding the week above, ending a day ago (inside the default retention)."""
    work = tmp_path_factory.mktemp("slo-report")
    t0 = (int(time.time()) // 86_400 - 9) * 86_400  # a midnight: 5-minute and hour points align with t_i
    prom = Prometheus(work / "prom", {"global": {"scrape_interval": "1m"}})
    write_week(work / "week.om", t0)
    backfill(work / "week.om", prom.data_dir)
    prom.start()
    try:
        yield prom, t0
    finally:
        prom.stop()


def report(prom, t0: int, *extra: str) -> dict:
    period = () if "--from" in extra else ("--from", str(at(t0, FROM_I)), "--to", str(at(t0, TO_I)))
    result = run_cli("slo", "report", "--prometheus", prom.url, *period, "--format", "json",
                     "--slo", "payout-success", "--slo", "payout-success-fleet", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def at(t0: int, i: int) -> int:
    return t0 + i * MIN


@pytest.fixture(scope="module")
def inline_report(week):
    prom, t0 = week
    return report(prom, t0)


@pytest.mark.live
@pytest.mark.xdist_group("slo-report")
@pytest.mark.parametrize("slo, provider", [("payout-success", PROVIDER), ("payout-success-fleet", None)])
def test_report_matches_the_hand_computed_week(inline_report, week, slo, provider):
    _, t0 = week
    rows = [r for r in inline_report["rows"] if r["slo"] == slo]
    assert [r["provider"] for r in rows] == [provider]  # one provider; the fleet row has none
    row = rows[0]
    assert row["objective"] == 0.999
    assert row["attained"] == pytest.approx(ATTAINED, abs=RATIO_TOLERANCE)
    assert row["budget_consumed"] == pytest.approx(CONSUMED, rel=1e-3)
    assert row["total_events"] == pytest.approx(TOTAL, rel=2e-4)
    assert row["bad_events"] == pytest.approx(BAD, rel=2e-4)
    assert row["suggested_objective"] == SUGGESTED
    for kind, expected in (("pages", PAGES), ("tickets", TICKETS)):
        got = {r["long_window"]: r for r in row[kind]}
        assert sorted(got) == sorted(expected), (kind, row[kind])  # one firing per tier, no other
        for window, (first, last) in expected.items():
            r = got[window]
            assert abs(r["start"] - at(t0, first)) <= STEP_TOLERANCE, (window, r["start_utc"])
            assert abs(r["end"] - at(t0, last)) <= STEP_TOLERANCE, (window, r["end_utc"])
            assert r["severity"] == ("critical" if kind == "pages" else "warning")
    assert {r["long_window"]: r["peak_burn"] for r in row["pages"]}["1h"] == pytest.approx(PEAK_1H)


@pytest.mark.live
@pytest.mark.xdist_group("slo-report")
def test_slos_without_events_report_no_ratio(week):
    prom, t0 = week
    result = run_cli("slo", "report", "--prometheus", prom.url, "--from", str(at(t0, FROM_I)), "--to", str(at(t0, TO_I)),
                     "--format", "json", "--slo", "webhook-processing")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [{
        "slo": "webhook-processing", "provider": None, "objective": 0.985, "attained": None, "bad_events": 0.0,
        "total_events": 0.0, "budget_consumed": None, "suggested_objective": None, "pages": [], "tickets": []}]


@pytest.mark.live
@pytest.mark.xdist_group("slo-report")
def test_recorded_series_give_the_same_pages(week, definitions):
    """The two ways agree on the outage's pages: the recording rules backfilled with `promtool
    tsdb create-blocks-from rules` (rules that read other rules' output in a second pass:
    promtool evaluates each pass against what the server already holds), then the alert
    expressions as written, on the recorded series. promtool evaluates a group at its
    offset within the interval, as a running Prometheus does (here some seconds after each
    sample), so a recorded 1h rate holds one increment fewer than the aligned inline one:
    the edges move by at most one evaluation step and the peak by 1/59 (600 of 1,180 payouts
    instead of 600 of 1,200). The hours before the outage cover the 6h window; the ticket
    tiers, whose 3-day windows would need days of rule backfill, read the same subqueries."""
    prom, t0 = week
    outage = OUTAGE.start - 1
    # The burn ratios of the two payout SLOs (their own groups); the 30-day budget is not read here.
    rules = [r for r in definitions.recording_rules if r.file in {"slos/payout-success.yaml", "slos/payout-success-fleet.yaml"}
             and "30d" not in r.record]
    names = {r.record for r in rules}
    first = [r for r in rules if not any(n in r.expr for n in names)]
    second = [r for r in rules if r not in first]
    assert first and second and not any(n in r.expr for r in second for n in {x.record for x in second})
    for batch in (first, second):
        backfill_recording_rules(prom, [{"name": "reward-slo-payout-success", "interval": "1m",
                                         "rules": [{"record": r.record, "expr": r.expr} for r in batch]}],
                                 at(t0, outage - 8 * 60), at(t0, outage + 3 * 60))
    period = ("--from", str(at(t0, outage - 60)), "--to", str(at(t0, outage + 2 * 60)))
    inline, recorded = report(prom, t0, *period), report(prom, t0, *period, "--recorded")
    assert recorded["method"] == "recorded" and inline["method"] == "inline"
    assert len(recorded["rows"]) == len(inline["rows"]) == 2
    for a, b in zip(inline["rows"], recorded["rows"], strict=True):
        assert (a["slo"], a["provider"], a["attained"]) == (b["slo"], b["provider"], b["attained"])
        assert [p["long_window"] for p in a["pages"]] == [p["long_window"] for p in b["pages"]] == ["1h", "6h"]
        for x, y in zip(a["pages"], b["pages"], strict=True):
            assert abs(x["start"] - y["start"]) <= STEP_TOLERANCE and abs(x["end"] - y["end"]) <= STEP_TOLERANCE, (x, y)
            assert y["peak_burn"] == pytest.approx(x["peak_burn"], rel=1 / 59 + 1e-9)


def test_inline_replaces_recorded_names_until_only_raw_series_are_left():
    recorded = {"a:x:rate5m": "sum(rate(x[5m]))", "a:x:ratio": "a:x:rate5m / a:y:rate5m", "a:y:rate5m": "sum(rate(y[5m]))"}
    assert slo_report.inline("avg_over_time(a:x:ratio[30m:5m]) > a:x:rate5m_other", recorded) == (
        "avg_over_time(((sum(rate(x[5m]))) / (sum(rate(y[5m]))))[30m:5m]) > a:x:rate5m_other")


@pytest.mark.parametrize("bad, total, expected", [
    # 0 failures of 1,000,000: upper bound 3.0 (rule of three) -> 6e-6 needed: 99.99% (1e-4) fits.
    (0, 1_000_000, 0.9999),
    # 10 of 10,000: upper ~17.0 -> 2 * 17 / 10,000 = 0.34%: 99.5% (0.5%) fits, 99.8% (0.2%) does not.
    (10, 10_000, 0.995),
    # 600 of 10,000 (6%): 2 * ~641 / 10,000 = 12.8% needed, more than the loosest (95%) allows.
    (600, 10_000, None),
    (0, 0, None),
])
def test_suggested_objective_leaves_the_margin(bad, total, expected):
    assert slo_report.suggested_objective(bad, total) == expected


def test_poisson_upper_bound_matches_the_tables():
    # One-sided 95% upper limits of a Poisson mean (Garwood's exact chi-square bound, as in
    # the standard tables): k=0: 2.996, k=10: 16.96; Wilson-Hilferty is within 2% there.
    assert slo_report.poisson_upper(0) == pytest.approx(2.996, rel=0.02)
    assert slo_report.poisson_upper(10) == pytest.approx(16.96, rel=0.02)


@pytest.mark.parametrize("args, message", [
    (("--from", "yesterday", "--to", "now"), "--from 'yesterday': not a time"),
    (("--from", "now", "--to", "now-1d"), "--to must be after --from"),
    (("--from", "now-1d", "--to", "now", "--slo", "payout-sucess"), "--slo payout-sucess: no such SLO"),
    (("--from", "now-1d", "--to", "now"), "cannot ask Prometheus at http://127.0.0.1"),
])
def test_bad_input_is_one_line_and_exit_1(args, message):
    result = run_cli("slo", "report", "--prometheus", "http://user:" + "hunter2@127.0.0.1:9", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout and result.stdout == ""
