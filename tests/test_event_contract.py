"""The reward event envelope, current version (contract/reward_event.schema.json): its examples both ways,
what it refuses, and proof that the fast validator `reward-obs trace` uses agrees with
jsonschema on every example and on generated and mutated events."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from reward_obs.catalog.event_contract import STAGES, EventContract, UnsupportedSchema, compile_schema
from reward_obs.lang.secret_scan import secret_findings
from reward_obs_dev.trace_gen import generate

from conftest import ROOT
from helpers import WEIRD_VALUES

SCHEMA_FILE = ROOT / "contract" / "reward_event.schema.json"
EXAMPLES = ROOT / "contract" / "examples" / "v2"  # the current version; tests/test_event_contract_versions.py covers v1
SCHEMA = json.loads(SCHEMA_FILE.read_text())
JSONSCHEMA = Draft202012Validator(SCHEMA)
CONTRACT = EventContract()

# The field names are a contract with the Loki dashboards and alert rule: renaming one
# breaks them silently, so the set is pinned here.
FIELDS = {
    "schema_version", "event_id", "correlation_id", "causation_id", "stage", "type", "timestamp",
    "campaign_id", "pool_id", "match_id", "claim_status", "provider", "provider_reference", "payout_result",
    "amount", "currency", "admin_action", "reason_code", "actor_role",
    "receipt_reference",  # the claim receipt reference a player quotes in a dispute
    "failure_cause",  # why a payout failed: the metrics contract's `cause` values
}
# Every invalid example and the field its error must name.
INVALID = {
    "missing-correlation-id": "correlation_id",
    "empty-correlation-id": "correlation_id",
    "kyc-field": "kyc_status",
    "free-text-note": "note",
    "provider-secret": "provider_api_key",
    "player-contact-details": "email",
    "wallet-address": "wallet_address",
    "admin-audit-without-reason": "reason_code",
    "admin-audit-without-actor-role": "actor_role",
    "admin-fields-outside-admin-audit": "reason_code",
    "amount-without-currency": "currency",
    "amount-as-number": "amount",
    "entry-fee-as-funding": "entry_fee",
    "season-points-field": "season_points",
    "season-points-as-currency": "currency",
    "payout-without-provider": "provider",
    "claim-without-claim-status": "claim_status",
    "claim-without-receipt-reference": "receipt_reference",  # disputes start from it
    "allocation-without-pool": "pool_id",
    "settlement-without-match-id": "match_id",
    "unknown-stage": "stage",
    "type-of-another-stage": "type",
    "timestamp-not-utc": "timestamp",
    "timestamp-without-time": "timestamp",
    "schema-version-3": "schema_version",
    "schema-version-as-string": "schema_version",
    "missing-causation-id": "causation_id",
    "causation-is-a-correlation-id": "causation_id",
    "unknown-provider": "provider",
    "unknown-reason-code": "reason_code",
    "actor-name-instead-of-role": "actor_role",
}
# Names that must never be a field: personal data, KYC, secrets, free text, entry fees
# as funding, Season Points as value.
FORBIDDEN_FIELDS = [
    "note", "notes", "comment", "message", "description", "text", "kyc", "kyc_status", "kyc_level", "document",
    "document_number", "passport", "phone", "email", "name", "wallet_address", "telegram_id", "user_id", "account_id",
    "ip", "api_key", "secret", "token", "signature", "password", "provider_secret", "webhook_secret",
    "entry_fee", "entry_fees", "funding_source", "season_points", "season_points_amount",
]


def examples(kind: str) -> list[Path]:
    return sorted((EXAMPLES / kind).glob("*.json"))


def load(path: Path):
    return json.loads(path.read_text())


def test_schema_is_valid_draft_2020_12_and_pins_the_field_names():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["properties"]) == FIELDS
    assert {"schema_version", "event_id", "correlation_id", "causation_id", "stage", "type", "timestamp"} <= set(SCHEMA["required"])
    assert SCHEMA["properties"]["stage"]["enum"] == list(STAGES)


def test_the_required_examples_exist():
    valid = {p.stem for p in examples("valid")}
    for stage in STAGES:
        assert any(name.startswith(stage.replace("_", "-")) for name in valid), stage
    assert {"missing-correlation-id", "kyc-field", "free-text-note", "provider-secret", "admin-audit-without-reason",
            "amount-without-currency"} <= {p.stem for p in examples("invalid")}


@pytest.mark.parametrize("path", examples("valid"), ids=lambda p: p.stem)
def test_valid_example_passes_both_validators(path):
    event = load(path)
    assert list(JSONSCHEMA.iter_errors(event)) == []
    assert CONTRACT.is_valid(event)
    assert CONTRACT.errors(event) == []


def test_every_invalid_example_is_listed_with_its_reason():
    assert sorted(p.stem for p in examples("invalid")) == sorted(INVALID)


@pytest.mark.parametrize("path", examples("invalid"), ids=lambda p: p.stem)
def test_invalid_example_fails_both_validators_for_its_reason(path):
    event = load(path)
    assert not JSONSCHEMA.is_valid(event)
    assert not CONTRACT.is_valid(event)
    errors = CONTRACT.errors(event)
    assert any(INVALID[path.stem] in e for e in errors), errors


def test_examples_hold_nothing_secret_looking():
    for path in examples("valid") + examples("invalid"):
        assert secret_findings(path.read_text()) == [], path.name


@pytest.mark.parametrize("name", FORBIDDEN_FIELDS)
def test_forbidden_field_is_refused(name):
    event = load(EXAMPLES / "valid" / "payout-paid.json")
    assert name not in SCHEMA["properties"]
    event[name] = "x"
    assert not JSONSCHEMA.is_valid(event) and not CONTRACT.is_valid(event)
    assert any(f"'{name}'" in e for e in CONTRACT.errors(event))


def test_a_token_shaped_value_is_refused_and_never_echoed():
    # Built at run time so the repository holds no token-shaped string.
    token = "70123" + "45678:" + "AAH" + "z" * 32
    event = load(EXAMPLES / "valid" / "payout-paid.json")
    for mutated in ({**event, "bot_token": token}, {**event, "correlation_id": token}, {**event, "event_id": token}):
        assert not CONTRACT.is_valid(mutated) and not JSONSCHEMA.is_valid(mutated)
        errors = CONTRACT.errors(mutated)
        assert errors and not any(token in e for e in errors), errors
        assert secret_findings("\n".join(errors)) == []


def test_every_stage_has_its_requirements():
    base = load(EXAMPLES / "valid" / "payout-paid.json")
    for stage, required in {"match_settlement": "match_id", "reward_allocation": "pool_id", "claim": "claim_status",
                            "payout": "provider", "admin_audit": "reason_code"}.items():
        event = {k: base[k] for k in ("schema_version", "event_id", "correlation_id", "causation_id", "timestamp")}
        event.update(stage=stage, type=f"{stage}.something")
        errors = CONTRACT.errors(event)
        assert any(f"'{required}' is a required property" in e for e in errors), (stage, errors)
        assert not CONTRACT.is_valid(event)


# ------------------------------------------------------------------ fast path == jsonschema


def agree(event) -> None:
    assert CONTRACT.is_valid(event) == JSONSCHEMA.is_valid(event), json.dumps(event, default=str)


def mutations(event: dict):
    """Every event one edit away: each field dropped or set to each weird value, each
    stage swapped in (with and without its type), each forbidden field added."""
    for key in list(event):
        yield {k: v for k, v in event.items() if k != key}
    for key in FIELDS:
        for value in WEIRD_VALUES:
            yield {**event, key: copy.deepcopy(value)}
    for stage in STAGES + ("refund",):
        yield {**event, "stage": stage}
        yield {**event, "stage": stage, "type": f"{stage}.done"}
    for name in FORBIDDEN_FIELDS:
        yield {**event, name: "x"}


@pytest.mark.parametrize("path", examples("valid") + examples("invalid"), ids=lambda p: p.parent.name + "/" + p.stem)
def test_fast_path_agrees_with_jsonschema_on_every_mutation_of_every_example(path):
    event = load(path)
    agree(event)
    count = 0
    for mutated in mutations(event):
        agree(mutated)
        count += 1
    assert count > 1000


def test_fast_path_agrees_on_values_that_are_not_objects():
    for value in WEIRD_VALUES + [[{}], "{}", 3.14]:
        agree(value)


def test_fast_path_agrees_on_generated_events():
    out = io.StringIO()
    generate(out, 3000, seed=7, broken_every=5, duplicate_every=7, out_of_order_every=3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3000
    invalid = 0
    for line in lines:
        event = json.loads(line)
        agree(event)
        invalid += not JSONSCHEMA.is_valid(event)
    # The generator's only invalid lines are the admin changes without a reason.
    assert 0 < invalid < 100


_field_values = st.one_of(
    st.sampled_from(WEIRD_VALUES),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789_.:-/ \n", max_size=50),
    st.integers(-3, 3), st.floats(allow_nan=False), st.booleans(), st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(examples("valid")), st.dictionaries(st.sampled_from(sorted(FIELDS) + ["note", "kyc_status"]), _field_values, max_size=6),
       st.sets(st.sampled_from(sorted(FIELDS)), max_size=3))
def test_fast_path_agrees_on_random_edits(path, changes, drops):
    event = {k: v for k, v in {**load(path), **changes}.items() if k not in drops}
    agree(event)


# ------------------------------------------------------------------ the compiler itself


def test_a_keyword_the_fast_path_does_not_know_is_refused():
    for schema in ({"minLength": 1}, {"properties": {"a": {"format": "date-time"}}}, {"anyOf": [True]},
                   {"allOf": [{"if": True, "then": {"maxLength": 3}}]}):
        with pytest.raises(UnsupportedSchema):
            compile_schema(schema)


@pytest.mark.parametrize("schema, instances", [
    ({"type": "integer", "const": 1}, [1, 1.0, True, "1", 2, None]),
    ({"enum": ["a", 1, None, False]}, ["a", 1, 1.0, True, None, False, 0, "b"]),
    ({"type": ["string", "null"], "pattern": "^a"}, ["a", "ba", None, 1, ["a"]]),
    ({"pattern": "^a"}, ["a", "b", 1, None, {}]),
    ({"required": ["a"], "properties": {"a": False}}, [{}, {"a": 1}, [], "x"]),
    ({"additionalProperties": {"type": "string"}, "properties": {"a": True}}, [{"a": 1, "b": "x"}, {"b": 2}, {}]),
    ({"dependentRequired": {"a": ["b"]}}, [{"a": 1}, {"a": 1, "b": 2}, {"b": 1}, 5]),
    ({"allOf": [{"if": {"required": ["s"], "properties": {"s": {"const": "x"}}}, "then": {"required": ["x"]}, "else": {"required": ["y"]}},
                {"if": {"required": ["s"], "properties": {"s": {"const": "z"}}}, "then": {"required": ["z"]}},
                {"required": ["s"]}]},
     [{"s": "x", "x": 1, "y": 1}, {"s": "x", "x": 1}, {"s": "z", "z": 1, "y": 1}, {"s": "z", "y": 1}, {"s": 1, "y": 1},
      {"y": 1}, {"s": ["x"], "y": 1}, [], "x"]),
])
def test_compiled_keywords_follow_jsonschema(schema, instances):
    compiled = compile_schema(schema)
    reference = Draft202012Validator(schema)
    for instance in instances:
        assert compiled(instance) == reference.is_valid(instance), (schema, instance)
