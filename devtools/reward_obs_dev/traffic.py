"""The healthy reward system, in one place: providers, shares and failure causes. The
three data generators read it (reward_obs_dev/simulator.py, reward_obs_dev/scenarios/generator.py,
reward_obs_dev/trace_gen.py), so a healthy simulator run, a healthy scenario and a generated trace
describe the same system.

No backend has run yet, so no share here is measured. Each is argued from what the
providers and players do, never chosen to fit an objective: the scenarios then check
that the objectives tolerate this world (scenarios/slo-payout-player-failures-healthy.yaml,
healthy-week.yaml). When the backend runs, replace them with measured shares.
"""
from __future__ import annotations

# Of decided claims.
DECISION_SHARE = {"approved": 0.88, "rejected": 0.05, "held": 0.07}
# Of allocation attempts (a healthy pool is never exhausted).
ALLOCATION_SHARE = {"allocated": 0.98, "rejected_cap": 0.015, "duplicate": 0.005, "rejected_pool_exhausted": 0.0}

# Of payouts, by provider: wallets dominate a Telegram game's cash-outs; fiat and manual
# payouts are the rare large ones.
PROVIDER_SHARE = {"ton_wallet": 0.40, "telegram_if_supported": 0.25, "gift_card": 0.20,
                  "crypto_exchange": 0.10, "fiat_provider": 0.048, "manual": 0.002}

# Of payouts that reach a final state, by failure cause (contract/metrics.yaml `cause`;
# the contract says whose each one is).
# - The player's, 0.6% together: the ordinary rate at which wallet, exchange and fiat
#   payouts bounce for the recipient's reason (the range the SLO work was asked to
#   tolerate is 0.5-1%). A mistyped or closed destination is most of it; a compliance
#   block (sanctions or KYC screening on the provider's side) is rarer, about one in six.
# - The platform's, 0.02% together (1 in 5,000): what is left after the backend retries a
#   failed provider call (provider calls fail up to 2% on an ordinary day,
#   scenarios/provider-low-error-rate.yaml; three attempts leave 0.002% if failures were
#   independent, but they come in short provider incidents, so ten times that). Provider
#   errors and timeouts are most of it; our own errors, an empty float and a provider's
#   refusal share the rest.
FAILURE_CAUSE_SHARE = {
    "invalid_destination": 0.005, "compliance_block": 0.001,
    "provider_error": 0.00007, "timeout": 0.00005, "platform_error": 0.00005,
    "insufficient_funds": 0.00001, "rejected_by_provider": 0.00002,
}
# Canceled: an operator or the player withdrew the claim before it was paid.
CANCELED_SHARE = 0.002
PAYOUT_RESULT_SHARE = {
    "failed": round(sum(FAILURE_CAUSE_SHARE.values()), 10),
    "canceled": CANCELED_SHARE,
    "paid": round(1 - sum(FAILURE_CAUSE_SHARE.values()) - CANCELED_SHARE, 10),
}
# What an outage fails payouts with (the simulator's provider-outage fault).
OUTAGE_CAUSE = "provider_error"

# Webhook deliveries per paid payout (duplicate: providers re-send; handled idempotently).
WEBHOOK_SHARE = {"processed": 0.998, "duplicate": 0.15, "invalid_signature": 0.001, "failed": 0.001}


def failure_cause(roll: float) -> str:
    """The cause of one failed payout, for a uniform roll in [0, 1): each cause in
    proportion to its share."""
    total = sum(FAILURE_CAUSE_SHARE.values())
    acc = 0.0
    for cause, share in FAILURE_CAUSE_SHARE.items():
        acc += share / total
        if roll < acc:
            return cause
    return cause
