"""Build a :class:`StreamManagerConfig` from a TOML file, the environment and flags.

Sources, later ones winning: the TOML file given by ``--config`` (top-level
keys are ``StreamManagerConfig`` field names), environment variables
``BOT_STREAM_<FIELD>`` (e.g. ``BOT_STREAM_BAR_CLOSE_GRACE_MS=500``), then flags
(``--timeframes``, ``--default-timeframe``, ``--set FIELD=VALUE``).

Every value is checked against the field's type here, and the ranges and
choices by ``StreamManagerConfig`` itself; either way a bad value is a
:class:`~bot.data.errors.ConfigError` naming the field, the value and what is
allowed. An unknown key in the file or in ``--set`` is an error listing the
known fields; an unknown ``BOT_STREAM_*`` variable is reported as a warning,
since other tools of the project may read variables of that prefix.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError

ENV_PREFIX = "BOT_STREAM_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"", "none", "null"})


def field_types() -> dict[str, Any]:
    """``StreamManagerConfig`` field name -> its type annotation, in declaration order."""
    hints = typing.get_type_hints(StreamManagerConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(StreamManagerConfig)}


FIELDS = field_types()


def load_config(path: str | Path | None = None, *,
                flags: Mapping[str, str | list[str]] | None = None,
                environ: Mapping[str, str] | None = None,
                warn: TextIO | None = None) -> StreamManagerConfig:
    """The validated config from ``path`` (TOML), ``environ`` and ``flags``.

    ``flags`` holds strings as typed on the command line (a list for
    ``supported_timeframes``). When the timeframes are given but the default
    timeframe is not, the first timeframe given becomes the default.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_typed_values(read_toml(path), f"--config {path}"))
    env = os.environ if environ is None else environ
    values.update(_env_values(env, warn or sys.stderr))
    values.update(_parsed_values(flags or {}, "flag"))
    timeframes = values.get("supported_timeframes")
    if timeframes and "default_timeframe" not in values and isinstance(timeframes, list):
        values["default_timeframe"] = timeframes[0]
    return StreamManagerConfig(**values)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file's table; a missing or invalid file is a ConfigError saying which."""
    file = Path(path)
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", str(file), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", str(file), f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", str(file), f"is not valid TOML: {exc}") from None


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["field=value", ...]`` (from ``--set``) -> ``{"field": "value"}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError("--set", item, "must be FIELD=VALUE, e.g. bar_close_grace_ms=500")
        out[name.strip()] = value.strip()
    return out


def _typed_values(table: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Check TOML values (already typed) against the field types."""
    out = {}
    for key, value in table.items():
        kind = _field_type(key, value, origin)
        out[key] = _check_type(key, value, kind)
    return out


def _parsed_values(strings: Mapping[str, str | list[str]], origin: str) -> dict[str, Any]:
    """Parse strings (flags, environment) into the field types."""
    out = {}
    for key, text in strings.items():
        kind = _field_type(key, text, origin)
        out[key] = _parse(key, text, kind)
    return out


def _env_values(environ: Mapping[str, str], warn: TextIO) -> dict[str, Any]:
    found: dict[str, str] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in FIELDS:
            found[key] = text
        else:
            print(f"warning: environment variable {name} is not a stream setting "
                  f"({_suggest(key)}); ignored", file=warn)
    return _parsed_values(found, "environment")


def _field_type(key: str, value: object, origin: str) -> Any:
    kind = FIELDS.get(key)
    if kind is None:
        raise ConfigError(key, value, f"unknown setting (from {origin}); {_suggest(key)}")
    return kind


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}known settings: {', '.join(FIELDS)}"


def _describe(kind: Any) -> str:
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if kind is str:
        return "a string"
    if typing.get_origin(kind) is list:
        return "a list of strings"
    return "a string or none"  # str | None


def _check_type(key: str, value: object, kind: Any) -> object:
    """``value`` if it has the field's type (an int is taken as a float); else ConfigError."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float and number:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:  # an integer beyond any float: out of every range
            raise ConfigError(key, value, f"must be {_describe(kind)} of sensible size") from None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = number and isinstance(value, int)
    elif typing.get_origin(kind) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(key, value, f"must be {_describe(kind)}")
    return value


def _parse(key: str, text: str | list[str], kind: Any) -> object:
    """A string (or list of strings, for list fields) as typed on a command line."""
    if typing.get_origin(kind) is list:
        items = text if isinstance(text, list) else [text]
        return [part for item in items for part in item.replace(",", " ").split()]
    if isinstance(text, list):
        raise ConfigError(key, text, f"must be {_describe(kind)}")
    word = text.strip()
    if kind is bool:
        if word.lower() in _TRUE:
            return True
        if word.lower() in _FALSE:
            return False
        raise ConfigError(key, text, "must be true or false (also yes/no, on/off, 1/0)")
    if kind is int or kind is float:
        try:
            return kind(word)
        except ValueError:
            raise ConfigError(key, text, f"must be {_describe(kind)}") from None
    if kind is str:
        return word
    return None if word.lower() in _NONE else word
