"""The Pulumi program: read config once, validate everything, then register resources."""
from __future__ import annotations

import dataclasses
import json

import pulumi

from reward_obs.catalog import internal, objectives
from reward_obs.catalog.config import NAMESPACE, StackConfig, key_types, load_config
from reward_obs.catalog.definitions import load_definitions
from reward_obs.checks.lint import format_report, lint, warnings
from reward_obs.model.definitions import Definitions
from reward_obs.model.errors import DefinitionError, Problem
from reward_obs.sinks.component import RewardObservability
from reward_obs.sinks.files import render_files


def read_config(definitions: Definitions) -> tuple[StackConfig, dict[str, pulumi.Input[str]]]:
    """Stack config from `pulumi config`, validated; secrets stay Pulumi secrets."""
    cfg = pulumi.Config(NAMESPACE)
    values: dict = {}
    problems: list[Problem] = []
    source = f"Pulumi.{pulumi.get_stack()}.yaml"
    for key, kind in key_types().items():
        raw = cfg.get(key)
        if raw is None:
            continue
        if kind == "string":
            values[key] = raw
            continue
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            problems.append(Problem(source, f"{NAMESPACE}:{key}", f"expects {kind}, got {raw!r}"))
    needed = sorted({key for cp in definitions.routing.contact_points for key in cp.secrets.values()})
    secrets: dict[str, pulumi.Input[str]] = {}
    for key in needed:
        value = cfg.get_secret(key)
        if value is None:
            problems.append(Problem(source, f"{NAMESPACE}:{key}", f"is required: pulumi config set --secret {NAMESPACE}:{key} ..."))
            continue
        secrets[key] = value
    try:
        config = load_config(values, source, definitions)
    except DefinitionError as exc:
        problems += exc.problems
    private = None
    try:
        private = read_internal_params(cfg, source, definitions)
    except DefinitionError as exc:
        problems += exc.problems
    if problems:
        raise DefinitionError(problems)
    if private is None:
        pulumi.log.warn(f"reward-observability: internal alert fields run on the repository's TEST values; set production's "
                        f"with `pulumi config set --secret --path '{NAMESPACE}:{internal.SECRET_CONFIG_KEY}.ALERT.FIELD' VALUE` "
                        "(docs/internal-thresholds.md)")
        return config, secrets
    return dataclasses.replace(config, internal_params=private), secrets


def read_internal_params(cfg: pulumi.Config, source: str, definitions: Definitions) -> dict | None:
    """The private values of internal alert fields from the secret `internalParams`, validated
    (messages never quote a value); None when the stack sets none. The component registers
    every resource that carries them as a Pulumi secret."""
    key = f"{NAMESPACE}:{internal.SECRET_CONFIG_KEY}"
    raw = cfg.get(internal.SECRET_CONFIG_KEY)
    if raw is None:
        return None
    if not pulumi.runtime.is_config_secret(key):
        raise DefinitionError([Problem(source, key, "must be a secret: pulumi config set --secret --path ... (it holds "
                                                   "private abuse thresholds)")])
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        raise DefinitionError([Problem(source, key, "is not a JSON object {Alert: {threshold: N, params: {NAME: N}}}")]) from None
    return internal.validate(values, f"{source} ({key}, secret)", definitions)


def main() -> None:
    try:
        definitions = load_definitions()
        config, secrets = read_config(definitions)
        definitions = objectives.apply(definitions, config)
        files = render_files(definitions, config)
    except DefinitionError as exc:
        # Raised before any resource is registered: nothing is created or changed.
        raise pulumi.RunError(f"reward-observability: {len(exc.problems)} problem(s):\n{exc}") from None
    report = lint(definitions, config, files)
    if not report.ok:
        raise pulumi.RunError(f"reward-observability: lint failed, nothing registered:\n{format_report(report)}")
    for line in warnings(report):
        pulumi.log.warn(f"reward-observability: {line}")
    stack = RewardObservability("rewards", definitions, config, secrets)
    pulumi.export("folder_uid", stack.folder_uid)
    pulumi.export("dashboard_urls", stack.dashboard_urls)
    pulumi.export("alert_names", stack.alert_names)
    pulumi.export("rules_paused", not config.rewards_live)
    # Which server writes the recorded series the dashboard reads: with "prometheus", load
    # the rendered rule file there, or the fleet-wide panels stay empty.
    pulumi.export("recording_rules_evaluated_by", config.recording_rules)
