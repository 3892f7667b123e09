"""The healthy reward system in shares: the one source the three data generators read
(reward_obs_dev/simulator.py, reward_obs_dev/scenarios/generator.py, reward_obs_dev/trace_gen.py), so a healthy
simulator run, a healthy scenario and a generated trace describe the same system."""
from __future__ import annotations

# Of decided claims.
DECISION_SHARE = {"approved": 0.88, "rejected": 0.05, "held": 0.07}
# Of allocation attempts (a healthy pool is never exhausted).
ALLOCATION_SHARE = {"allocated": 0.98, "rejected_cap": 0.015, "duplicate": 0.005, "rejected_pool_exhausted": 0.0}
# Of payouts: 1 in 2,000 fails on a healthy day, inside the 99.9% payout SLO (slos/payout-success.yaml).
PAYOUT_RESULT_SHARE = {"paid": 0.9975, "failed": 0.0005, "canceled": 0.002}
# Webhook deliveries per paid payout (duplicate: providers re-send; handled idempotently).
WEBHOOK_SHARE = {"processed": 0.998, "duplicate": 0.15, "invalid_signature": 0.001, "failed": 0.001}
