"""Stack configuration, read in one place and validated before anything is built.

The Pulumi program reads it with `pulumi.Config`; the offline renderer reads the same
keys from a `Pulumi.<stack>.yaml` file. Secret keys are never read by the renderer:
it writes a `$__env{...}` reference in their place.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from reward_obs.catalog import internal, objectives, stack_checks
from reward_obs.catalog.definitions import REPO_ROOT
from reward_obs.catalog.files import Validator, load_yaml, value_problems, yaml_error
from reward_obs.lang import promql
from reward_obs.lang.logql import event_fields, logql_problems
from reward_obs.model.definitions import Definitions
from reward_obs.model.errors import DefinitionError, Problem, ProblemCollector
from reward_obs.model.lookup import required
from reward_obs.model.text import read_utf8

NAMESPACE = "reward-observability"

# Secret config keys: set with `pulumi config set --secret KEY VALUE`.
SECRET_KEYS = ("telegramBotToken", "oncallWebhookUrl", "heartbeatWebhookUrl")  # also named in notifications/routing.yaml


def secret_env_var(key: str) -> str:
    """Environment variable Grafana reads a secret from in the file-provisioning path."""
    snake = "".join("_" + c if c.isupper() else c.upper() for c in key)
    return f"REWARD_OBS_{snake}"


@dataclass(frozen=True)
class StackConfig:
    # No defaults here: load_config fills every optional key from the schema's "default".
    grafana_url: str
    runbook_base_url: str
    environment: str
    prometheus_datasource_uid: str
    loki_datasource_uid: str
    rewards_live: bool
    scrape_interval: str
    org_id: int
    telegram_chat_id: str
    email_addresses: tuple[str, ...]
    alert_overrides: dict
    runbook_links: str
    # "owned": this stack owns the organisation's notification policy tree (Grafana has
    # one per org; managing it replaces whatever else is there). "rule-level": the tree
    # is left alone and each rule routes itself to its contact point.
    notification_policy: str
    # Where the recording rules (recording_rules/*.yaml) are evaluated; exactly one place
    # writes the recorded series the dashboards read. "prometheus": the Prometheus server
    # loads the rendered rule file. "grafana": Grafana-managed recording rules write them
    # to the Prometheus data source by remote write.
    recording_rules: str
    # The reward backend's admin API/console (runbooks/actions.yaml calls are made under it).
    admin_base_url: str
    # The Grafana minor line deployed to (grafana_compat.supported_versions()); the render and
    # the Pulumi component choose version-dependent fields from it.
    grafana_version: str
    # Grafana 13+ with the alertingMultiplePolicies toggle applies inhibition rules
    # (docs/slos.md, "Inhibition"); older Grafana rejects them, so they are created only on request.
    grafana_inhibition_rules: bool
    # slos/*.yaml objectives this stack sets itself: {slo: {target?, providers?}}
    # (catalog/objectives.py applies them to the definitions).
    slo_objectives: dict = field(default_factory=dict)
    # Production values of the alerts' internal fields (catalog/internal.py): from
    # `--internal-params FILE` offline or the secret `internalParams` under Pulumi; empty:
    # the definitions' TEST values. Never in a committed stack file.
    internal_params: dict = field(default_factory=dict)

    def overrides(self, alert: str) -> dict:
        """The alert's override for this stack: alertOverrides, then its private values."""
        return internal.merge(self.alert_overrides.get(alert), self.internal_params.get(alert))

    @property
    def owns_policy_tree(self) -> bool:
        return self.notification_policy == "owned"

    @property
    def grafana_records(self) -> bool:
        """True when Grafana, not Prometheus, evaluates the recording rules."""
        return self.recording_rules == "grafana"

    def value(self, key: str):
        """A non-secret config value by its stack-config key (camelCase)."""
        return {
            "telegramChatId": self.telegram_chat_id,
            "emailAddresses": list(self.email_addresses),
        }[key]

    def repository_runbook_url(self, file: str, anchor: str) -> str:
        return f"{self.runbook_base_url}/runbooks/{file}#{anchor}"

    def panel_url(self, dashboard_uid: str, panel_id: int) -> str:
        return f"{self.grafana_url}/d/{dashboard_uid}?viewPanel={panel_id}"


def _key(path: str) -> str:
    return f"{NAMESPACE}:{path}"


def _schema() -> dict:
    return json.loads((REPO_ROOT / "schemas" / "stack_config.schema.json").read_text(encoding="utf-8"))


def defaults() -> dict:
    """Every optional key's default, from the schema: the one place a default is written."""
    return {key: spec["default"] for key, spec in _schema()["properties"].items() if "default" in spec}


def key_types() -> dict[str, str]:
    """Stack config key -> its JSON type, for readers that get every value as text."""
    return {key: spec.get("type", "string") for key, spec in _schema()["properties"].items()}


def load_config(values: dict, source: str, definitions: Definitions | None = None) -> StackConfig:
    """A StackConfig from plain (non-secret) values; DefinitionError naming every bad key."""
    problems = ProblemCollector()
    for key in SECRET_KEYS:
        if key in values:
            problems.add(source, _key(key), "is a secret: set it with `pulumi config set --secret`, never as plain config")
    if internal.SECRET_CONFIG_KEY in values:
        problems.add(source, _key(internal.SECRET_CONFIG_KEY), "holds private values in plain text: set each with "
                     f"`pulumi config set --secret --path '{_key(internal.SECRET_CONFIG_KEY)}.ALERT.FIELD' VALUE`")
    plain = {k: v for k, v in values.items() if k not in SECRET_KEYS and k != internal.SECRET_CONFIG_KEY}
    for where, message in value_problems(plain):
        problems.add(source, _key(where), message)
    problems.raise_if_any()
    validator = Validator(_schema())
    for error in sorted(validator.iter_errors(plain), key=lambda e: str(list(e.absolute_path))):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            missing = next(k for k in error.validator_value if k not in error.instance)
            path.append(missing)
            message = "is required"
            choices = _schema()["properties"].get(missing, {}).get("enum") if not path[:-1] else None
            if choices:  # an explicit choice: say what the choices are
                message += f": choose one of {', '.join(choices)} (schemas/stack_config.schema.json says what each means)"
        else:
            message = error.message
        problems.add(source, _key(".".join(path)), message)
    problems.raise_if_any()
    plain = {**defaults(), **plain}
    for key, message in stack_checks.problems(plain):
        problems.add(source, _key(key), message)

    overrides = plain["alertOverrides"]
    if definitions is not None:
        for cp in definitions.routing.contact_points:
            for setting, key in sorted(cp.config.items()):
                if not plain.get(key):
                    problems.add(source, _key(key), f"is required: contact point {cp.name} reads its {setting} from it")
        for name, override in overrides.items():
            rule = definitions.alert(name)
            if rule is None:
                problems.add(source, _key(f"alertOverrides.{name}"), "is not a defined alert")
                continue
            for where, message in internal.stack_override_problems(rule, override, _key(internal.SECRET_CONFIG_KEY)):
                problems.add(source, _key(f"alertOverrides.{name}.{where}"), message)
            fixed = _fixed_by_recording(rule, definitions)
            for param in override.get("params", {}):
                if param not in rule.params:
                    problems.add(source, _key(f"alertOverrides.{name}.params.{param}"),
                                 f"{name} has no parameter {param!r} (it has: {', '.join(sorted(rule.params)) or 'none'})")
                elif param in fixed:
                    # The recorded series computes it: overriding it here would change only
                    # the alert's words.
                    problems.add(source, _key(f"alertOverrides.{name}.params.{param}"),
                                 f"{name}'s query does not read {param!r}: a recording rule fixes it "
                                 f"({', '.join(fixed[param])}), so overriding it would change only the alert's words")
            try:
                resolved = rule.resolved(override)
            except (KeyError, ValueError) as exc:
                problems.add(source, _key(f"alertOverrides.{name}"), f"does not fit the rule: {exc}")
                continue
            if rule.is_promql:
                messages = promql.catalog_problems(resolved.condition_expr, required(definitions.series_contract, "the metrics contract"))
            else:
                messages = logql_problems(resolved.expr, event_fields(definitions.root))
            for message in messages:
                problems.add(source, _key(f"alertOverrides.{name}"), f"makes the rule's query invalid: {message}")
        objectives.check(plain["sloObjectives"], definitions, lambda key, message: problems.add(source, _key(key), message))
    problems.raise_if_any()
    return StackConfig(
        grafana_url=plain["grafanaUrl"],
        runbook_base_url=plain["runbookBaseUrl"],
        environment=plain["environment"],
        prometheus_datasource_uid=plain["prometheusDatasourceUid"],
        loki_datasource_uid=plain["lokiDatasourceUid"],
        rewards_live=plain["rewardsLive"],
        scrape_interval=plain["scrapeInterval"],
        org_id=plain["orgId"],
        telegram_chat_id=plain["telegramChatId"],
        email_addresses=tuple(plain["emailAddresses"]),
        alert_overrides=overrides,
        runbook_links=plain["runbookLinks"],
        notification_policy=plain["notificationPolicy"],
        recording_rules=plain["recordingRules"],
        admin_base_url=plain["adminBaseUrl"],
        grafana_version=plain["grafanaVersion"],
        grafana_inhibition_rules=plain["grafanaInhibitionRules"],
        slo_objectives=plain["sloObjectives"],
    )


def _has_secure(value) -> bool:
    """A value holding an encrypted leaf anywhere (`pulumi config set --secret --path`)."""
    if isinstance(value, dict):
        return "secure" in value or any(_has_secure(v) for v in value.values())
    return isinstance(value, list) and any(_has_secure(v) for v in value)


def read_stack_file(path: Path) -> dict:
    """The plain config values of a Pulumi.<stack>.yaml, namespace stripped.

    Encrypted (`secure:`) values are dropped: the renderer never decrypts a secret.
    """
    source = str(path)
    try:
        data = load_yaml(read_utf8(Path(path), source))
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(source, *yaml_error(exc))]) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise DefinitionError([Problem(source, "(top level)", "must be a mapping with a `config:` key (a Pulumi stack file)")])
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise DefinitionError([Problem(source, "config", "must be a mapping of `namespace:key: value`")])
    values = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise DefinitionError([Problem(source, "config", f"key {str(key)[:60]!r} is not a string")])
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE or _has_secure(value):
            continue
        values[name] = value
    return values



def _fixed_by_recording(rule, definitions) -> dict[str, list[str]]:
    """Parameters of an alert that reads recorded series (recording_rules/, not an SLO's)
    and quotes them without reading them: the recording rule holds their value (a `_text`
    parameter is the words of another). Each with the recorded series the alert reads."""
    recorded = {r.record for r in definitions.recording_rules if not r.file.startswith("slos/")}
    if not rule.is_promql or not recorded:
        return {}
    reads = sorted(recorded & {s.metric for s in promql.selectors(promql.parse(rule.resolved().expr))})
    if not reads:
        return {}
    return {p: reads for p in rule.params if not p.endswith("_text") and f"${p}" not in rule.expr}
