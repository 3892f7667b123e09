"""Runs the real Pulumi program under Pulumi's own mocks and records what it registers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The program runs in a child process so each run gets a fresh Pulumi runtime (its
# settings, config and mocks are process-global).
_CHILD = r'''
import json, sys
import pulumi
from pulumi.runtime import mocks, config as runtime_config

spec = json.load(sys.stdin)
records = []

class Recorder(pulumi.runtime.Mocks):
    def new_resource(self, args):
        records.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
        state = dict(args.inputs)
        return [args.name + "-id", state]
    def call(self, args):
        return {}

runtime_config.set_all_config({k: v for k, v in spec["config"].items()}, spec["secret_keys"])
pulumi.runtime.set_mocks(Recorder(), project="reward-observability", stack=spec["stack"], preview=spec["preview"])

from reward_obs.sinks import pulumi_program

outcome = {"error": None, "outputs": {}, "secret_outputs": []}
exports = {}
pulumi.export = lambda key, value: exports.__setitem__(key, pulumi.Output.from_input(value))

def keep(key, output):
    def store(args):
        value, secret = args
        outcome["outputs"][key] = value
        if secret:
            outcome["secret_outputs"].append(key)
    return pulumi.Output.all(output, output.is_secret()).apply(store)

@pulumi.runtime.test
def run():
    pulumi_program.main()
    return pulumi.Output.all(*[keep(k, v) for k, v in exports.items()])

try:
    run()
except Exception as exc:
    outcome["error"] = str(exc)
outcome["resources"] = records
json.dump(outcome, sys.stdout, default=str)
'''


def run_program(config: dict[str, object], secrets: dict[str, str], stack: str = "test", preview: bool = False) -> dict:
    """Run the Pulumi program; returns {"error", "resources": [{type, name, inputs}]}.

    `config` keys are without namespace; values are what `pulumi config set` stores.
    """
    full = {f"reward-observability:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    full.update({f"reward-observability:{k}": v for k, v in secrets.items()})
    spec = {"config": full, "secret_keys": [f"reward-observability:{k}" for k in secrets], "stack": stack, "preview": preview}
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(spec), capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"Pulumi program child failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    return result
