"""Secrets never printed: a registry of secret values, and the redaction outputs go through.

Credentials register their values when they are loaded (:func:`register_secret`;
:class:`~bot.data.venues.alpaca.AlpacaCredentials` does it for the key id and
the secret, the NATS client for user names, passwords and tokens in server
URLs). From the first one on:

* every log record of every logger in the process, at any level, is redacted
  when it is created: its message, exception text and stack text. A log record
  factory does it, so no handler, formatter or level the application chooses
  can show a secret, and third-party loggers are covered too: ``websockets.client``
  logs every frame at DEBUG, Alpaca's auth frame included;
* :func:`redact` hides them in other text the package shows (task errors), and
  :func:`redact_json` in whole health and metrics reports (and so in the status
  server's and the dashboard's HTTP answers).

A secret is hidden whole and in fragments: every run of ``FRAGMENT`` characters
of it is masked, because libraries shorten long values before logging them
(``websockets`` shows ``'{"action":"auth","key":"PK..","sec...t0002xyz"}'``).
Values shorter than ``MIN_SECRET`` characters are not registered: they would
mask ordinary words, and they are no secret worth the name.
"""

from __future__ import annotations

import base64
import logging
import re
import traceback
from typing import Any
from urllib.parse import unquote, urlsplit

FRAGMENT = 8
MIN_SECRET = 4
MASK = "[redacted]"


class SecretRegistry:
    """The secret values of this process and a matcher for any of their fragments."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str) -> None:
        """Hide ``value`` (and its fragments) from now on; short or repeated values are ignored."""
        if len(value) < MIN_SECRET or value in self._secrets:
            return
        self._secrets.add(value)
        fragments: set[str] = set()
        for secret in self._secrets:
            n = min(FRAGMENT, len(secret))
            fragments.update(secret[i:i + n] for i in range(len(secret) - n + 1))
        alternatives = "|".join(re.escape(f) for f in sorted(fragments, key=len, reverse=True))
        # A lookahead finds overlapping matches, so a secret's every character is covered.
        self._pattern = re.compile(f"(?=({alternatives}))")

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """``text`` with every fragment of a registered secret replaced by ``MASK``."""
        pattern = self._pattern
        if pattern is None:
            return text
        spans: list[list[int]] = []
        for match in pattern.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        parts, done = [], 0
        for start, end in spans:
            parts += [text[done:start], MASK]
            done = end
        parts.append(text[done:])
        return "".join(parts)


SECRETS = SecretRegistry()


def register_secret(value: str) -> None:
    """Never print ``value`` from now on (see the module docstring)."""
    SECRETS.register(value)
    if SECRETS:
        _install_log_redaction()


def register_url_credentials(url: str) -> None:
    """Register the credentials of a URL such as ``nats://user:pass@host`` or ``nats://token@host``.

    The user name and password as written and percent-decoded, and the HTTP Basic
    credentials a client derives from them (base64 of ``user:password``): a
    ``ws://`` URL's credentials travel in the handshake's ``Authorization``
    header, and libraries show that header in their errors.
    """
    try:
        parts = urlsplit(url)
        written = (parts.username or "", parts.password or "")
    except ValueError:
        return
    if max(len(v) for v in written) < MIN_SECRET:  # none, or too short to be worth hiding
        return
    for user, password in {written, (unquote(written[0]), unquote(written[1]))}:
        for value in (user, password):
            register_secret(value)
        pair = f"{user}:{password}"
        try:
            raw = pair.encode("latin-1")  # what HTTP clients encode Basic credentials with
        except UnicodeEncodeError:
            raw = pair.encode()
        register_secret(base64.b64encode(raw).decode())


def redact(text: str) -> str:
    """``text`` with every registered secret, whole or in fragments, masked."""
    return SECRETS.redact(text)


def redact_json(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with every string redacted; others as they are."""
    if not SECRETS:
        return value
    if isinstance(value, str):
        return SECRETS.redact(value)
    if isinstance(value, dict):
        return {redact_json(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v) for v in value]
    return value


# -- logging ---------------------------------------------------------------------------
def _install_log_redaction() -> None:
    """Wrap the process's log record factory (once; again if someone replaced ours)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    redacting_factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


def _redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's message, exception and stack text; untouched when clean."""
    try:
        message = record.getMessage()
    except Exception:  # a broken log call: its raw arguments must not be printed either
        record.msg = SECRETS.redact(f"{record.msg!s} (log arguments could not be formatted)")
        record.args = ()
    else:
        clean = SECRETS.redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = SECRETS.redact(text)
        if clean != text:
            record.exc_info, record.exc_text = None, clean
    if record.stack_info:
        record.stack_info = SECRETS.redact(record.stack_info)
