"""The files around the code: the version and the changelog move together, the README stays
an overview whose links resolve, the pre-commit hooks check what they claim, and every file
follows .editorconfig."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from reward_obs.lang.markdown import anchors

from conftest import ROOT, run_cli

PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# Keep a Changelog 1.1.0: `## [Unreleased]`, then `## [X.Y.Z] - YYYY-MM-DD`, newest first.
RELEASE = re.compile(r"^## \[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)
DOCS = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "bench/README.md",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def test_the_newest_release_in_the_changelog_is_the_package_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = RELEASE.findall(text)
    assert releases, "no released version heading"
    assert text.index("\n## [Unreleased]\n") < RELEASE.search(text).start(), "Unreleased comes first"
    newest = ".".join(releases[0][:3])
    assert newest == PYPROJECT_VERSION, f"CHANGELOG.md's newest release is {newest}, pyproject.toml says {PYPROJECT_VERSION}"
    versions = [tuple(map(int, r[:3])) for r in releases]
    dates = [r[3] for r in releases]
    assert versions == sorted(versions, reverse=True) and dates == sorted(dates, reverse=True), "newest first"
    for version in ["Unreleased", *(".".join(map(str, v)) for v in versions)]:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, re.MULTILINE), f"no link for [{version}]"


def test_reward_obs_version_is_the_package_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"reward-obs {PYPROJECT_VERSION}"


def test_readme_is_an_overview():
    assert len((ROOT / "README.md").read_text().splitlines()) < 250


_LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]*)\)")


def _fenced_removed(text: str) -> str:
    return re.sub(r"^(```+|````+).*?^\1\s*$", "", text, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    """Every relative link of the documentation reaches a file in the repository, and an
    anchor into a Markdown file is one of its headings (GitHub's slugs)."""
    source = ROOT / doc
    broken = []
    for target in _LINK.findall(_fenced_removed(source.read_text())):
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{doc}: " + "; ".join(broken)


# ---------------------------------------------------------------- pre-commit


def _hooks() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}


def test_pre_commit_config_is_valid_for_pre_commit():
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"ruff", "mypy", "check-metaschema", "reward-obs-validate", "alert-reference"} <= set(_hooks())


def test_every_definition_schema_has_a_hook():
    """A schema whose files no hook checks is a schema pre-commit silently skips. The stack
    config schema is the exception: it describes the `config:` block inside Pulumi.<stack>.yaml,
    which `reward-obs validate` reads."""
    used = {m.group(1) for h in _hooks().values() for m in [re.search(r"--schemafile (\S+)", h["entry"])] if m}
    schemas = {str(p.relative_to(ROOT)) for p in (ROOT / "schemas").glob("*.schema.json")}
    assert schemas - used == {"schemas/stack_config.schema.json"}


def _tracked(pattern: str) -> list[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(f for f in files if re.search(pattern, f))


SCHEMA_HOOKS = sorted(h for h, hook in _hooks().items() if "--schemafile" in hook["entry"])


@pytest.mark.parametrize("hook_id", SCHEMA_HOOKS)
def test_schema_hook_passes_on_its_files_and_fails_on_a_planted_defect(hook_id, tmp_path):
    """Each schema hook's command, run as pre-commit runs it (entry + the files its `files`
    pattern matches), passes on the repository; a copy of one of its files with a key its
    schema does not allow fails it."""
    hook = _hooks()[hook_id]
    command = [str(ROOT / hook["entry"].split()[0]), *hook["entry"].split()[1:]]
    files = _tracked(hook["files"])
    assert files, f"{hook_id}: its pattern matches no file"
    ok = subprocess.run([*command, *files], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = yaml.safe_load((ROOT / files[0]).read_text())
    data["not_in_the_schema"] = 1
    planted = tmp_path / Path(files[0]).name
    planted.write_text(json.dumps(data) if planted.suffix == ".json" else yaml.safe_dump(data))
    bad = subprocess.run([*command, str(planted)], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "not_in_the_schema" in bad.stdout + bad.stderr


# ---------------------------------------------------------------- .editorconfig


def test_every_text_file_follows_editorconfig():
    """The `[*]` rules of .editorconfig: LF line ends, a final newline, no trailing whitespace
    (but in the generated files it exempts); Python indented by 4 spaces, never tabs."""
    exempt = {"docs/alerts.md", "runbooks/actions.md", "bench/RESULTS.md"}
    problems = []
    for rel in _tracked(r"\.(py|ya?ml|json|md|toml|tmpl|sh|cfg)$|^Makefile$|^\.editorconfig$"):
        data = (ROOT / rel).read_bytes()
        if not data:
            continue
        if b"\r\n" in data:
            problems.append(f"{rel}: CRLF line ends")
        if not data.endswith(b"\n"):
            problems.append(f"{rel}: no final newline")
        if rel not in exempt and re.search(rb"[ \t]+\n", data):
            problems.append(f"{rel}: trailing whitespace")
        if rel.endswith(".py") and re.search(rb"^\t", data, re.MULTILINE):
            problems.append(f"{rel}: indented with a tab")
    assert not problems, problems
