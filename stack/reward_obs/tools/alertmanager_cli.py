"""`reward-obs alertmanager-config`: the Alertmanager routing built from
notifications/routing.yaml, every contact point as a webhook to BASE/<contact point>."""
from __future__ import annotations

import sys
from pathlib import Path

from reward_obs.builders.alertmanager import alertmanager_config
from reward_obs.catalog.load import load
from reward_obs.sinks.files import GENERATED_HEADER, dump_yaml


def cmd_alertmanager_config(args) -> int:
    definitions, _config = load(args)
    base = args.webhook_base.rstrip("/")
    urls = {cp.name: f"{base}/{cp.name}" for cp in definitions.routing.contact_points}
    text = GENERATED_HEADER + dump_yaml(alertmanager_config(definitions, urls))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("alertmanager-config",
                       help="print an Alertmanager config routing the Prometheus alerts like the Grafana policy (webhook receivers)")
    p.add_argument("--webhook-base", default="http://127.0.0.1:9099/notify",
                   help="each contact point becomes a webhook to BASE/<contact point name>")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.set_defaults(handler=cmd_alertmanager_config)
