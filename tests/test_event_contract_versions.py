"""Versions of the reward event envelope (contract/reward_event.versions.json): each version's
examples hold against its own schema, a change that makes a valid event invalid is a new
version, released schemas are pinned, and `reward-obs trace` reads a log of every version
and explains a bad line per version."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reward_obs.catalog.event_contract import ContractVersionsError, EventContract, VersionedEventContract
from reward_obs.tools.trace import analyse
from reward_obs_dev.trace_gen import generate

from conftest import ROOT, run_cli
from helpers import WEIRD_VALUES

CONTRACT_DIR = ROOT / "contract"
VERSIONS = json.loads((CONTRACT_DIR / "reward_event.versions.json").read_text())
CONTRACTS = VersionedEventContract()
# A version other than the current one is never edited again. These are the digests of the
# released files, written out here so that editing one needs two deliberate changes.
FROZEN = {1: "d5ef4892261a8359d1594e248bad89b9dac0580f47492a6571eeb1369fba107f"}  # sha256 of reward_event.v1.schema.json


def examples(version: int, kind: str) -> list[Path]:
    return sorted((CONTRACT_DIR / VERSIONS["versions"][str(version)]["examples"] / kind).glob("*.json"))


def all_examples(kind: str) -> list[tuple[int, Path]]:
    return [(v, p) for v in CONTRACTS.supported for p in examples(v, kind)]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def example_id(item) -> str:
    return f"v{item[0]}/{item[1].parent.name}/{item[1].stem}"


# ------------------------------------------------------------------ the versions map


def test_the_versions_are_1_and_2_and_2_is_current():
    assert CONTRACTS.supported == (1, 2)
    assert CONTRACTS.current_version == 2 and VERSIONS["current"] == 2
    assert CONTRACTS.current.schema_path == CONTRACT_DIR / "reward_event.schema.json"


@pytest.mark.parametrize("version", [1, 2])
def test_each_schema_is_pinned_by_its_digest(version):
    schema_file = CONTRACT_DIR / VERSIONS["versions"][str(version)]["schema"]
    digest = hashlib.sha256(schema_file.read_bytes()).hexdigest()
    assert digest == VERSIONS["versions"][str(version)]["sha256"], (
        f"{schema_file.name} changed. A change that makes a valid event invalid is a new schema_version "
        "(a new schema file and a new entry in reward_event.versions.json); a compatible change to the current "
        "version is listed under its changes and its sha256 updated.")
    if version != VERSIONS["current"]:
        assert digest == FROZEN[version], f"{schema_file.name} is a released version and is never edited"


@pytest.mark.parametrize("version", [1, 2])
def test_each_schema_claims_its_own_version(version):
    schema = json.loads((CONTRACT_DIR / VERSIONS["versions"][str(version)]["schema"]).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"]["const"] == version


def test_a_version_is_breaking_exactly_when_an_event_valid_before_is_invalid_now():
    # The oracle is the previous version's own valid examples, restamped: the changelog
    # must call a version breaking if and only if one of them no longer passes.
    for version in CONTRACTS.supported[1:]:
        current = CONTRACTS.contracts[version]
        broken = [p.stem for p in examples(version - 1, "valid") if not current.is_valid({**load(p), "schema_version": version})]
        declared = any(change["breaking"] for change in VERSIONS["versions"][str(version)]["changes"])
        assert declared == bool(broken), (version, broken)
    # What broke between 1 and 2, reasoned from the changelog: claim events without a
    # receipt reference, and a type outside the enumeration.
    v2 = CONTRACTS.contracts[2]
    assert sorted(p.stem for p in examples(1, "valid") if not v2.is_valid({**load(p), "schema_version": 2})) == [
        "claim-claimable", "claim-paid", "claim-started", "reward-allocation-rejected"]


# ------------------------------------------------------------------ examples of every version


@pytest.mark.parametrize("item", all_examples("valid"), ids=example_id)
def test_a_valid_example_passes_its_own_version(item):
    version, path = item
    event = load(path)
    assert event["schema_version"] == version
    schema = CONTRACTS.contracts[version]
    assert Draft202012Validator(schema.schema).is_valid(event) and schema.is_valid(event)
    assert CONTRACTS.is_valid(event)


@pytest.mark.parametrize("item", all_examples("invalid"), ids=example_id)
def test_an_invalid_example_fails_its_own_version(item):
    version, path = item
    event = load(path)
    schema = CONTRACTS.contracts[version]
    assert not Draft202012Validator(schema.schema).is_valid(event) and not schema.is_valid(event)
    assert not CONTRACTS.is_valid(event)


@pytest.mark.parametrize("path", examples(1, "valid") + examples(1, "invalid"), ids=lambda p: f"v1/{p.parent.name}/{p.stem}")
def test_the_fast_path_agrees_with_jsonschema_on_version_1(path):
    schema = EventContract(CONTRACT_DIR / "reward_event.v1.schema.json")
    reference = Draft202012Validator(schema.schema)
    event = load(path)
    variants = [event] + [{k: v for k, v in event.items() if k != key} for key in event]
    variants += [{**event, key: copy.deepcopy(value)} for key in list(event) + ["receipt_reference"] for value in WEIRD_VALUES]
    for variant in variants:
        assert schema.is_valid(variant) == reference.is_valid(variant), json.dumps(variant, default=str)


@pytest.mark.parametrize("value", [1, 1.0, 2, 2.0, True, False, None, "1", "2", 3, 0, -1, [1], {"v": 1}, 1.5])
def test_the_version_dispatch_agrees_with_jsonschema_on_odd_versions(value):
    # Valid exactly when the event passes the schema of some version (the versions' consts
    # are disjoint, so at most one can accept it).
    for path in examples(1, "valid")[:3] + examples(2, "valid")[:3]:
        event = {**load(path), "schema_version": value}
        expected = any(Draft202012Validator(c.schema).is_valid(event) for c in CONTRACTS.contracts.values())
        assert CONTRACTS.is_valid(event) == expected, (path.name, value)


# ------------------------------------------------------------------ explaining a bad line, per version

V1_CLAIM = load(CONTRACT_DIR / "examples/v1/valid/claim-started.json")
V2_CLAIM = load(CONTRACT_DIR / "examples/v2/valid/claim-started.json")
V1_PAYOUT = load(CONTRACT_DIR / "examples/v1/valid/payout-paid.json")


@pytest.mark.parametrize("event, expected", [
    ({**V1_CLAIM, "schema_version": 2},
     "claims v2, fails v2: (event): 'receipt_reference' is a required property | as v1: valid (a v1 event labelled 2?)"),
    ({**V2_CLAIM, "schema_version": 1},
     "claims v1, fails v1: (event): Additional properties are not allowed ('receipt_reference' was unexpected) "
     "| as v2: valid (a v2 event labelled 1?)"),
    ({k: v for k, v in V1_CLAIM.items() if k != "correlation_id"},
     "claims v1, fails v1: (event): 'correlation_id' is a required property "
     "| as v2: (event): 'correlation_id' is a required property"),
    ({**V1_PAYOUT, "schema_version": 3}, "schema_version 3 is not a version of the event contract (supported: 1, 2)"),
    ({**V1_PAYOUT, "schema_version": "1"}, 'schema_version "1" is not a version of the event contract (supported: 1, 2)'),
    ({k: v for k, v in V1_PAYOUT.items() if k != "schema_version"},
     "no schema_version (supported: 1, 2) | as v1: valid | as v2: valid"),
], ids=["v1-claim-labelled-2", "v2-claim-labelled-1", "broken-v1", "unknown-version", "version-as-string", "no-version"])
def test_a_bad_event_is_explained_per_version(event, expected):
    assert not CONTRACTS.is_valid(event)
    assert CONTRACTS.explain(event) == expected


# ------------------------------------------------------------------ trace reads every version


def as_v1(event: dict) -> dict:
    """A current event as the backend wrote it to version 1: no receipt reference."""
    # Version 1 knows neither field: both came with version 2 (contract/reward_event.versions.json).
    return {**{k: v for k, v in event.items() if k not in ("receipt_reference", "failure_cause")}, "schema_version": 1}


def generated(n: int) -> list[dict]:
    out = io.StringIO()
    generate(out, n, seed=11)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def ndjson(events) -> list[bytes]:
    return [(e if isinstance(e, str) else json.dumps(e)).encode() + b"\n" for e in events]


def test_a_log_written_to_version_1_is_clean():
    events = [as_v1(e) for e in generated(2000)]
    claims = sum(e["stage"] == "claim" for e in events)
    assert claims > 100  # so the old behaviour (every claim line bad) would show
    report = analyse(ndjson(events))
    assert report.bad_lines == 0 and report.ok
    assert report.events_by_version == {"1": 2000}


def test_a_log_mid_migration_is_clean_and_counted_by_version():
    events = generated(2000)
    # Chains that started before the migration keep version 1; the others are version 2.
    old = {e["correlation_id"] for e in events[:600]}
    mixed = [as_v1(e) if e["correlation_id"] in old else e for e in events]
    report = analyse(ndjson(mixed))
    assert report.bad_lines == 0 and report.ok
    n1 = sum(e["schema_version"] == 1 for e in mixed)
    assert report.events_by_version == {"1": n1, "2": 2000 - n1} and 0 < n1 < 2000


def test_a_version_1_log_labelled_2_names_the_claim_lines_and_the_version_they_fit(tmp_path):
    events = [{**as_v1(e), "schema_version": 2} for e in generated(500)]
    claim_lines = [i + 1 for i, e in enumerate(events) if e["stage"] == "claim"]
    events.append({**events[0], "event_id": "evt_unknownversion1", "schema_version": 7})
    report = analyse(ndjson(events), max_bad=1000)
    assert [b.line for b in report.bad_samples] == claim_lines + [501]
    assert {b.problem for b in report.bad_samples[:-1]} == {
        "claims v2, fails v2: (event): 'receipt_reference' is a required property | as v1: valid (a v1 event labelled 2?)"}
    assert report.bad_samples[-1].problem == "schema_version 7 is not a version of the event contract (supported: 1, 2)"
    assert report.bad_lines_by_version == {"2": len(claim_lines), "unknown": 1}
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(ndjson(events)))
    result = run_cli("trace", str(path))
    assert result.returncode == 1
    assert f"    by the version they claim: v2 {len(claim_lines)}, an unknown version 1" in result.stdout
    assert f"  events by schema_version: v2 {500 - len(claim_lines)}" in result.stdout


def test_trace_id_explains_a_line_per_version(tmp_path):
    events = [as_v1(e) for e in generated(300)]
    claim = next(e for e in events if e["stage"] == "claim")
    cid = claim["correlation_id"]
    chain = [e if e is not claim else {**e, "schema_version": 2} for e in events if e["correlation_id"] == cid]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(ndjson(chain)))
    result = run_cli("trace", str(path), "--id", cid)
    assert result.returncode == 1
    assert "(event): 'receipt_reference' is a required property | as v1: valid (a v1 event labelled 2?)" in result.stdout


# ------------------------------------------------------------------ a broken versions map


def contract_copy(tmp_path: Path) -> Path:
    target = tmp_path / "contract"
    shutil.copytree(CONTRACT_DIR, target)
    return target / "reward_event.versions.json"


def edit_map(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(current=5), "reward_event.versions.json:current: 5 is not one of the versions (1, 2)"),
    (lambda d: d["versions"]["1"].update(schema="reward_event.schema.json"),
     "reward_event.schema.json:properties.schema_version.const: is 2, but reward_event.versions.json lists this file as version 1"),
    (lambda d: d["versions"]["2"].pop("changes"), "reward_event.versions.json:versions.2: 'changes' is a required property"),
    (lambda d: d["versions"]["2"].update(schema="missing.schema.json"),
     "reward_event.versions.json:versions.2.schema: cannot read missing.schema.json: No such file or directory"),
])
def test_a_broken_versions_map_is_one_clear_error(tmp_path, change, message):
    path = contract_copy(tmp_path)
    edit_map(path, change)
    with pytest.raises(ContractVersionsError) as exc:
        VersionedEventContract(path)
    assert str(exc.value) == message
