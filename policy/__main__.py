"""Policy pack for `pulumi preview --policy-pack policy` (and `pulumi up`)."""
import reward_policies as rp
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy, StackValidationPolicy


def _for_type(resource_type, check):
    def validate(args, report_violation):
        if args.resource_type == resource_type:
            check(dict(args.props), report_violation)
    return validate


def _secret_credentials(args):
    return rp.secret_credentials_remediation(args.resource_type, args.props)


def _stack(args, report_violation):
    rp.unpaused_rules_without_route([(r.resource_type, dict(r.props)) for r in args.resources], report_violation)


PolicyPack(
    name="reward-observability",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name="alert-rule-metadata", description="Every alert rule has runbook_url, summary, severity and team.",
                                 validate=_for_type(rp.RULE_GROUP, rp.rule_metadata)),
        ResourceValidationPolicy(name="dashboard-in-folder", description="Every dashboard lives in a folder.",
                                 validate=_for_type(rp.DASHBOARD, rp.dashboard_in_folder)),
        ResourceValidationPolicy(name="contact-point-credentials-secret",
                                 description="No contact point credential is a plain string.",
                                 enforcement_level=EnforcementLevel.REMEDIATE, remediate=_secret_credentials),
        StackValidationPolicy(name="prod-rules-routed",
                              description="No rule is live in prod without a contact point.", validate=_stack),
    ],
)
