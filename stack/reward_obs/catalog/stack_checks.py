"""What the stack config's JSON Schema cannot say: URLs that are URLs, durations Go can
hold, a Telegram chat id Telegram can hold. Each bound cites where it comes from."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from reward_obs.model.durations import parse_duration

URL_KEYS = ("grafanaUrl", "runbookBaseUrl", "adminBaseUrl")
# Go's time.Duration is an int64 of nanoseconds: at most 2^63-1 ns, about 292 years.
# Prometheus and Grafana parse `for` and intervals with prometheus/common model.ParseDuration,
# which refuses a longer one ("duration out of range"; common/model/time.go).
MAX_DURATION_SECONDS = (2**63 - 1) // 10**9
# Telegram Bot API, Chat.id: "at most 52 significant bits" (https://core.telegram.org/bots/api#chat).
MAX_TELEGRAM_CHAT_ID = 2**52
# RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_EMAIL = 254
# RFC 3986 section 2: the characters a URI may hold (anything else percent-encoded); no
# space, no control or bidirectional character, nothing non-ASCII.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")
# RFC 1123 host names (labels of letters, digits and hyphens) or an IPv4 address; an IPv6
# literal is bracketed in the URL and urlsplit returns it without the brackets.
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


def duration_problem(text: str) -> str | None:
    """Why a duration cannot be used, or None."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        return str(exc)
    if seconds > MAX_DURATION_SECONDS:
        return f"is longer than Go's largest duration (about 292 years, {MAX_DURATION_SECONDS}s)"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is not a base URL (http or https, a host, a port in range, no
    credentials, no query or fragment: paths are appended to it), or None."""
    if not _URI_CHARS.match(url):
        return "is not a URL: only the characters RFC 3986 allows (percent-encode the rest), no spaces"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    try:
        port = parts.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if ":" not in host and not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return f"has a host {host!r} that is not a host name (letters, digits, hyphens and dots)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.query or "?" in url:
        return "is a base URL: it must not have a query (?...), paths are appended to it"
    if parts.fragment or "#" in url:
        return "is a base URL: it must not have a fragment (#...), paths are appended to it"
    if url.endswith("/"):
        return "must not end with /: paths are appended to it"
    return None


def problems(values: dict) -> list[tuple[str, str]]:
    """(key, message) for the values of a schema-valid stack config (defaults filled)."""
    found = []
    for key in URL_KEYS:
        value = values.get(key)
        if value:  # adminBaseUrl may be left empty (no console link)
            message = url_problem(value)
            if message:
                found.append((key, message))
    message = duration_problem(values["scrapeInterval"])
    if message:
        found.append(("scrapeInterval", message))
    elif parse_duration(values["scrapeInterval"]) == 0:
        found.append(("scrapeInterval", "must be longer than 0s (Prometheus refuses a zero scrape_interval)"))
    chat = values.get("telegramChatId")
    if chat and abs(int(chat)) >= MAX_TELEGRAM_CHAT_ID:
        found.append(("telegramChatId", "is not a Telegram chat id (at most 52 significant bits, Bot API Chat.id)"))
    for i, address in enumerate(values.get("emailAddresses", ())):
        if len(address) > MAX_EMAIL:
            found.append((f"emailAddresses[{i}]", f"is longer than an e-mail address can be ({MAX_EMAIL}, RFC 5321)"))
    for name, override in sorted(values.get("alertOverrides", {}).items()):
        if "for" in override:
            message = duration_problem(override["for"])
            if message:
                found.append((f"alertOverrides.{name}.for", message))
    return found
