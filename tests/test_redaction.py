"""Registered secrets are masked, whole and in fragments, in every log record and report."""

from __future__ import annotations

import logging

import pytest

from bot.data.redaction import MASK, SecretRegistry, redact, redact_json, register_secret
from bot.data.venues.alpaca.session import AlpacaCredentials

SECRET = "SkRedactionCanary0042xyzQ"


def test_a_secret_is_masked_whole_and_in_fragments() -> None:
    registry = SecretRegistry()
    registry.register(SECRET)
    shortened = f'"sec...{SECRET[-12:]}"'  # how websockets elides a long frame
    assert registry.redact(f"key={SECRET}!") == f"key={MASK}!"
    assert registry.redact(shortened) == f'"sec...{MASK}"'
    assert registry.redact("nothing to hide") == "nothing to hide"
    for i in range(len(SECRET) - 7):
        assert SECRET[i:i + 8] not in registry.redact(f"x{SECRET[i:i + 8]}y")


def test_short_values_are_not_registered() -> None:
    registry = SecretRegistry()
    registry.register("abc")
    assert not registry and registry.redact("abc") == "abc"


def test_a_third_party_debug_log_line_is_redacted_for_every_handler(
        caplog: pytest.LogCaptureFixture) -> None:
    register_secret(SECRET)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("websockets.client").debug("> TEXT %r", f'{{"secret":"{SECRET}"}}')
        try:
            raise ValueError(f"refused {SECRET}")
        except ValueError:
            logging.getLogger("aiohttp.client").exception("request failed")
    assert SECRET[:8] not in caplog.text and SECRET[-8:] not in caplog.text
    assert MASK in caplog.text
    assert "ValueError: refused [redacted]" in caplog.text


def test_reports_are_redacted_recursively() -> None:
    register_secret(SECRET)
    report = {"reasons": [f"failed: {SECRET}"], "n": 3, SECRET: {"x": (SECRET,)}}
    assert redact_json(report) == {"reasons": [f"failed: {MASK}"], "n": 3,
                                   MASK: {"x": [MASK]}}


def test_loading_alpaca_credentials_registers_them() -> None:
    creds = AlpacaCredentials("PKCANARYKEYID777", "CredentialCanarySecret9")
    assert "PKCANARY" not in redact(f"{creds.key_id} {creds.secret_key}")
    assert "CanarySe" not in redact(f"{creds.key_id} {creds.secret_key}")
    assert "PKCANARY" not in repr(creds)


def test_nats_url_credentials_are_registered_and_masked_in_errors() -> None:
    from bot.data.nats.client import server_list

    with pytest.raises(ValueError) as raised:
        server_list(["http://natsuser:NatsPassCanary99@host:4222"])
    assert "NatsPassCanary99"[:8] not in str(raised.value)
    assert redact("nats://natsuser:NatsPassCanary99@h:4222") == f"nats://{MASK}:{MASK}@h:4222"
