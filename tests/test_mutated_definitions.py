"""Every definition and stack file mutated at random, as a careless editor would: the CLI
either refuses with `file:field: problem` lines, exit 1, nothing written and no traceback,
or renders output that passed every check and renders again byte for byte.

The CLI runs in-process (`reward_obs.cli.main`): an exception escaping main() fails the
example with its traceback, which is exactly what a user would have seen. Hypothesis runs
a fixed, bounded set of examples (derandomize=True), so a failure reproduces."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_obs.cli import main

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("contract", "schemas", "dashboards", "recording_rules", "slos", "alert_rules", "notifications", "runbooks",
          "Pulumi.selfhost.yaml", "Pulumi.prod.yaml")
# Every file a definition lives in (the JSON Schemas and the event contract's JSON are the
# project's code, not definitions an operator edits).
MUTATED = sorted(
    str(p.relative_to(ROOT))
    for d in ("contract", "dashboards", "recording_rules", "slos", "alert_rules", "notifications", "runbooks")
    for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in (".yaml", ".md", ".tmpl")
) + ["Pulumi.selfhost.yaml", "Pulumi.prod.yaml"]

# A problem line: `file:field: message` (catalog) or `file:field: check: message` (lint).
PROBLEM_LINE = re.compile(r"^\s*\S+\.(?:yaml|md|tmpl|json|py):\S[^\n]*?: \S")
MAX_STDERR = 64_000
# Each kind of mutation gets its own examples (Hypothesis would otherwise favour the first
# kinds it can draw): 15 kinds, 90 CLI runs of validate and render in all.
EXAMPLES_PER_KIND = 6  # a refused alias bomb must not print its expansion


def alias_bomb(levels: int) -> str:
    lines = ["zz_bomb_0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"zz_bomb_{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def scalar_paths(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield path + (key,)
            yield from scalar_paths(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield path + (i,)
            yield from scalar_paths(value, path + (i,))


def replaced(data, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (replaced(v, rest, value) if k == head else v) for k, v in data.items()}
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(data)]


def get(data, path):
    for part in path:
        data = data[part]
    return data


VALUE_KINDS = ("trailing-newline", "null", "huge", "negative", "long", "type-swap", "bidi", "other-value", "zero",
               "float-inf")


def new_value(kind: str, old, other, draw):
    if kind == "trailing-newline":
        return f"{old}\n" if not isinstance(old, (dict, list)) else old
    if kind == "null":
        return None
    if kind == "huge":
        return draw(st.sampled_from([10**30, -(10**30), 2**63, 1e300]))
    if kind == "negative":
        return -abs(old) if isinstance(old, (int, float)) and not isinstance(old, bool) and old else -50
    if kind == "long":
        return "x" * draw(st.sampled_from([300, 20_000]))
    if kind == "type-swap":
        return draw(st.sampled_from([[old], {"k": old}, str(old), True, 7]))
    if kind == "bidi":
        return f"\u202e{old}" if isinstance(old, str) else old
    if kind == "other-value":
        return other
    if kind == "zero":
        return draw(st.sampled_from([0, "0s", "0"]))
    return float("inf")


TEXT_KINDS = ("byte-flip", "not-utf8", "drop-line")
YAML_KINDS = ("duplicate-key", "alias-bomb") + tuple(f"value:{kind}" for kind in VALUE_KINDS)
YAML_FILES = [rel for rel in MUTATED if rel.endswith(".yaml")]


@st.composite
def mutation(draw, kind: str):
    """(file, new bytes, description) of one random single mutation of this kind."""
    rel = draw(st.sampled_from(MUTATED if kind in TEXT_KINDS else YAML_FILES))
    raw = (ROOT / rel).read_bytes()
    if kind == "byte-flip":
        at = draw(st.integers(0, len(raw) - 1))
        return rel, raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:], f"byte {at} flipped"
    if kind == "not-utf8":
        at = draw(st.integers(0, len(raw)))
        return rel, raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xe2\x82"])) + raw[at:], f"invalid UTF-8 at {at}"
    lines = raw.decode("utf-8").splitlines(keepends=True)
    if kind == "drop-line":
        at = draw(st.integers(0, len(lines) - 1))
        return rel, "".join(lines[:at] + lines[at + 1:]).encode(), f"line {at + 1} dropped"
    if kind == "duplicate-key":
        keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_][\w:-]*:\s", line)]
        at = draw(st.sampled_from(keyed))
        return rel, "".join(lines[:at + 1] + [lines[at]] + lines[at + 1:]).encode(), f"line {at + 1} repeated"
    if kind == "alias-bomb":
        levels = draw(st.sampled_from([3, 8]))
        return rel, (raw.decode() + alias_bomb(levels)).encode(), f"alias bomb of {levels} levels"
    value_kind = kind.removeprefix("value:")
    data = yaml.safe_load(raw)
    paths = list(scalar_paths(data))
    path = draw(st.sampled_from(paths))
    other = get(data, draw(st.sampled_from(paths)))
    text = yaml.safe_dump(replaced(data, path, new_value(value_kind, get(data, path), other, draw)),
                          sort_keys=False, allow_unicode=True, width=10_000)
    return rel, text.encode(), f"{value_kind} at {'.'.join(map(str, path))}"


def run(root: Path, stack: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--root", str(root), "--stack-config", str(stack), *args])
    return code, out.getvalue(), err.getvalue()


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mutated") / "repo"
    root.mkdir()
    for name in COPIED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind", TEXT_KINDS + YAML_KINDS)
@settings(max_examples=EXAMPLES_PER_KIND, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_mutated_definition_is_refused_cleanly_or_rendered_right(base, tmp_path_factory, kind, data):
    change = data.draw(mutation(kind), label="mutation")
    rel, new, what = change
    target = base / rel
    original = target.read_bytes()
    # Mutating the prod stack file is read as the stack config; any other file with the selfhost one.
    stack = base / (rel if rel.startswith("Pulumi.") else "Pulumi.selfhost.yaml")
    out = tmp_path_factory.mktemp("out") / "render"
    try:
        target.write_bytes(new)
        code, _stdout, stderr = run(base, stack, "validate")
        render_code, _, render_err = run(base, stack, "render", "--out", str(out))
        assert render_code == code, f"{rel} ({what}): validate exited {code}, render {render_code}\n{render_err}"
        if code != 0:
            for err in (stderr, render_err):
                assert code == 1 and "Traceback" not in err, f"{rel} ({what}):\n{err[:2000]}"
                assert len(err) < MAX_STDERR, f"{rel} ({what}): {len(err)} characters of errors"
                assert "nothing was written" in err, err[:2000]
                assert any(PROBLEM_LINE.match(line) for line in err.splitlines()), f"{rel} ({what}):\n{err[:2000]}"
            assert not out.exists(), f"{rel} ({what}): refused, yet {out} was written"
            return
        again = tmp_path_factory.mktemp("out") / "render"
        assert run(base, stack, "render", "--out", str(again))[0] == 0
        assert tree(out) == tree(again), f"{rel} ({what}): two renders differ"
    finally:
        target.write_bytes(original)
