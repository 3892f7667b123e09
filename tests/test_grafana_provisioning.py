"""The provisioning validator (reward_obs/checks/grafana_provisioning.py): zero findings on the
render of every example stack at every supported Grafana version, and each rule proven
on a hand-written fixture broken one way at a time (tests/fixtures/grafana_provisioning/)."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.grafana_compat import supported_versions
from reward_obs.checks.grafana_provisioning import duration_seconds, validate_files
from reward_obs.sinks.files import render_files

from conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "grafana_provisioning"
BASE = yaml.safe_load((FIXTURES / "base.yaml").read_text())
CASES = yaml.safe_load((FIXTURES / "cases.yaml").read_text())
EXAMPLE_STACKS = sorted(p for p in ROOT.glob("Pulumi.*.yaml"))


def _text(path: str, data) -> str:
    return json.dumps(data) if path.endswith(".json") else yaml.safe_dump(data, sort_keys=False)


def _files(tree: dict) -> dict[str, str]:
    return {path: _text(path, data) for path, data in tree.items()}


def _walk(data, dotted: str):
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data.setdefault(part, {})
    return data, (int(last) if isinstance(data, list) else last)


def _apply(case: dict) -> dict:
    tree = copy.deepcopy(BASE)
    doc = tree[case["file"]]
    for dotted, value in (case.get("set") or {}).items():
        parent, key = _walk(doc, dotted)
        parent[key] = value
    if "delete" in case:
        parent, key = _walk(doc, case["delete"])
        del parent[key]
    return tree


def _versions(case: dict) -> list[str]:
    return case.get("version") or list(supported_versions())


@pytest.mark.slow
@pytest.mark.parametrize("stack", EXAMPLE_STACKS, ids=lambda p: p.name)
def test_every_example_stack_renders_clean_at_every_supported_version(definitions, stack):
    assert {p.name for p in EXAMPLE_STACKS} >= {"Pulumi.selfhost.yaml", "Pulumi.prod.yaml"}
    config = load_config(read_stack_file(stack), str(stack), definitions)
    for version in supported_versions():
        files = render_files(definitions, dataclasses.replace(config, grafana_version=version))
        assert any(p.startswith("grafana/provisioning/alerting/") for p in files)
        findings = validate_files(files, version)
        assert findings == [], f"{stack.name} at Grafana {version}:\n" + "\n".join(map(str, findings))


def test_the_base_fixture_is_clean_at_every_version():
    for version in supported_versions():
        assert validate_files(_files(BASE), version) == []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_rule_catches_what_it_is_for(case):
    files = _files(_apply(case))
    for version in _versions(case):
        findings = validate_files(files, version)
        if case.get("clean"):
            assert findings == [], "\n".join(map(str, findings))
            continue
        reported = case.get("reported_in", case["file"])  # a break in one file may show in another
        wanted = [f for f in findings if (f.file, f.field) == (reported, case["field"])]
        assert wanted and any(case["message"] in f.message for f in wanted), (
            f"Grafana {version}: expected {reported}:{case['field']}: ...{case['message']}...; got\n"
            + "\n".join(map(str, findings)))


def test_the_fixtures_cover_every_version_dependent_rule():
    """Each version-dependent change in grafana_compat has a case on both sides of it."""
    names = " ".join(c["name"] for c in CASES)
    assert "before 12.3" in names and "from 12.3" in names
    assert "before 12.4" in names and "from 12.4" in names


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("1h30m", 5400), ("0s", 0), ("0", 0), ("90s", 90),
                                           ("1.5m", None), ("", None), ("5 m", None), ("m", None), ("5m1h", None)])
def test_durations_parse_as_prometheus_model_does(text, seconds):
    # prometheus/common model.ParseDuration: integer units in order y w d h m s ms; "0" alone is zero.
    assert duration_seconds(text) == seconds


def test_an_unsupported_version_is_a_caller_error():
    with pytest.raises(ValueError):
        validate_files({}, "10.4")
