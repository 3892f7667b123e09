"""Every rendered Prometheus rule group fits a scalable ruler's default limits, so the same
files load unchanged into Grafana Mimir (docs/scaling.md).

The limits are Mimir's defaults, read from its source, not from this project: grafana/mimir
pkg/util/validation/limits.go registers `-ruler.max-rules-per-rule-group` with default 20
and `-ruler.max-rule-groups-per-tenant` with default 70. One stack is one tenant; each
rendered file is one namespace (`mimirtool rules load` reads a `namespace:` and the file's
groups; Mimir keys a group by namespace and name).
"""
from __future__ import annotations

import re

import pytest
import yaml

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.sinks.files import render_files

from conftest import ROOT

MIMIR_MAX_RULES_PER_GROUP = 20
MIMIR_MAX_GROUPS_PER_TENANT = 70
STACKS = ("Pulumi.prod.yaml", "Pulumi.selfhost.yaml")
# A Mimir namespace is a path segment of the ruler API (/prometheus/config/v1/rules/{namespace}).
NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _rule_files() -> dict[str, dict[str, dict]]:
    """stack -> rendered Prometheus rule file -> its parsed content."""
    definitions = load_definitions(ROOT)
    out = {}
    for stack in STACKS:
        config = load_config(read_stack_file(ROOT / stack), stack, definitions)
        files = render_files(definitions, config)
        out[stack] = {name: yaml.safe_load(text) for name, text in sorted(files.items())
                      if name.startswith("prometheus/") and name.endswith(".rules.yaml")}
    return out


RULE_FILES = _rule_files()
GROUPS = [(stack, name, g) for stack, files in RULE_FILES.items() for name, data in files.items() for g in data["groups"]]


def _case(stack: str, group: dict):
    marks = ()
    return pytest.param(group, id=f"{stack.removeprefix('Pulumi.').removesuffix('.yaml')}-{group['name']}", marks=marks)


def test_every_stack_renders_prometheus_rules():
    assert set(RULE_FILES) == set(STACKS)
    assert all(RULE_FILES[s] for s in STACKS)


@pytest.mark.parametrize("group", [_case(stack, g) for stack, _, g in GROUPS])
def test_rule_group_within_mimir_rules_per_group(group):
    assert len(group["rules"]) <= MIMIR_MAX_RULES_PER_GROUP, (
        f"{group['name']}: {len(group['rules'])} rules, Mimir's default -ruler.max-rules-per-rule-group is {MIMIR_MAX_RULES_PER_GROUP}")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_within_mimir_groups_per_tenant(stack):
    groups = [g["name"] for data in RULE_FILES[stack].values() for g in data["groups"]]
    assert 0 < len(groups) <= MIMIR_MAX_GROUPS_PER_TENANT


@pytest.mark.parametrize("stack", STACKS)
def test_one_namespace_per_file_and_group_names_unique(stack):
    """mimirtool loads each file as one namespace (its stem); group names are unique in the
    namespace (Mimir would overwrite one with the other) and, so the files can also share one
    namespace or one Prometheus, across the stack."""
    names = []
    for path, data in RULE_FILES[stack].items():
        namespace = path.rsplit("/", 1)[-1].removesuffix(".rules.yaml")
        assert NAMESPACE.match(namespace), path
        names += [g["name"] for g in data["groups"]]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
