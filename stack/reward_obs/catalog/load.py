"""Everything a command needs, read and validated: the definitions and one stack's config."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from reward_obs.catalog import internal, objectives
from reward_obs.catalog.config import StackConfig, load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.definitions import Definitions
from reward_obs.model.errors import DefinitionError, Problem

DEFAULT_STACK_FILE = "Pulumi.selfhost.yaml"


def load_stack(root: Path, stack_config: Path | None = None) -> tuple[Definitions, StackConfig]:
    """The definitions under root, with the stack's SLO objectives applied, and the stack
    config (default: root/Pulumi.selfhost.yaml)."""
    definitions = load_definitions(root)
    stack_file = stack_config or (root / DEFAULT_STACK_FILE)
    try:
        values = read_stack_file(stack_file)
    except OSError as exc:
        raise DefinitionError([Problem(str(stack_file), "(file)", f"cannot read stack config: {exc.strerror}")]) from None
    config = load_config(values, str(stack_file), definitions)
    return objectives.apply(definitions, config), config


def load(args) -> tuple[Definitions, StackConfig]:
    """load_stack for parsed command-line arguments (--root, --stack-config), with the
    private values of internal alert fields from --internal-params when given."""
    definitions, config = load_stack(args.root, args.stack_config)
    path = getattr(args, "internal_params", None)
    if path is None:
        return definitions, config
    return definitions, dataclasses.replace(config, internal_params=internal.load_file(path, definitions))
