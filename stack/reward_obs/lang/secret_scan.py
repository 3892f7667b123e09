"""Patterns of values that look like credentials. Used on runbooks, rendered files and
the repository itself: none of them may ever hold a secret."""
from __future__ import annotations

import re

SECRET_PATTERNS = {
    "telegram bot token": re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{30,}\b"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
    "assigned secret": re.compile(r"(?i)\b(api[_-]?key|secret|token|password|passwd|bearer)\b\s*[:=]\s*['\"]?[A-Za-z0-9+/_\-]{12,}"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # Not after `@`: `uses: owner/repo@<commit SHA>` pins a public git object, not a secret.
    "long hex string": re.compile(r"(?<!@)\b[0-9a-f]{40,}\b"),
}


# A line that names its hex string a sha256 or a commit, or a GitHub blob URL, holds the
# digest of a public file or a public git object (vendored fixtures cite their source
# commit so), not a key.
DIGEST_LINE = re.compile(r"\b(sha256|commit)\b|/blob/[0-9a-f]{40}/", re.I)


def secret_findings(text: str) -> list[str]:
    """Names of the patterns found, with the line number of each hit."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for name, pattern in SECRET_PATTERNS.items():
            if name == "long hex string" and DIGEST_LINE.search(line):
                continue
            if pattern.search(line):
                found.append(f"line {number}: looks like a {name}")
    return found
