"""The one command-line and config dialect of every align-* command; imports no Beam, no TensorFlow.

- A bad flag, path or value is a ``UsageError``; ``exits_cleanly`` prints it as
  ``prog: error: message`` in one line and exits 2, never a traceback; so is a feature used
  without its extra (``MissingExtra``, filters/extras.py), which names the extra to install.
- ``run(argv=None)`` is a command's work and returns what it did (a job's stats, metrics);
  ``main(argv=None)`` is its console script and returns None, so a success exits 0.
- A config is a frozen dataclass whose defaults are the recipe's values. A YAML file (a path,
  or the name of a config shipped beside the code, e.g. ``small``) overrides some keys, and a
  typed flag per key (``--max-unigrams 30``) overrides the file; an unknown key is refused
  by name.

This module sits in filters/, the bottom of the import graph, because both pipeline/ and
training/ use it and neither may import the other (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from filters.extras import MissingExtra

C = TypeVar("C")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class UsageError(ValueError):
    """A bad flag, path or config value: reported in one line, never as a traceback."""


def exits_cleanly(prog: str) -> Callable:
    """Turns UsageError (a missing input, a missing extra) into ``prog: error: message`` and
    exit 2."""

    def decorate(run: Callable) -> Callable:
        @functools.wraps(run)
        def wrapper(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except (UsageError, FileNotFoundError, MissingExtra) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                raise SystemExit(2) from None

        return wrapper

    return decorate


def check_at_least(args: argparse.Namespace, minimums: Mapping[str, float]) -> None:
    """``--flag must be at least N`` for the first given flag below its minimum."""
    for name, minimum in minimums.items():
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {minimum}")


# --- config files -----------------------------------------------------------------------------


def local_text(path: str) -> str:
    """Reads a local file; callers that know other file systems pass their own reader."""
    return Path(path).read_text(encoding="utf-8")


def config_path(name_or_path: str | Path, shipped: Path) -> str:
    """A config file's path: as given, or a config shipped in ``shipped`` named without
    ``.yaml`` (``--config small``) when no such local file exists."""
    path = str(name_or_path)
    candidate = shipped / f"{path}.yaml"
    if "://" not in path and not Path(path).exists() and candidate.exists():
        return str(candidate)
    return path


def read_config_file(path: str, read_text: Callable[[str], str] = local_text) -> dict:
    """The mapping a YAML config file holds (empty for an empty file)."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except OSError as error:
        raise UsageError(f"config file {path}: {error}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"config file {path} is not valid YAML: {error}".split("\n")[0]) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    return values


def fields_of(config_class: type) -> dict[str, dataclasses.Field]:
    return {field.name: field for field in dataclasses.fields(config_class)}


def check_known(values: Iterable[str], config_class: type, source: str = "") -> None:
    """An unknown key is an error that names it (and where it came from)."""
    unknown = sorted(set(values) - set(fields_of(config_class)))
    if unknown:
        where = f" in {source}" if source else ""
        raise UsageError(f"unknown config key {unknown[0]!r}{where}")


def kind(field: dataclasses.Field) -> str:
    """A field's type as written (``int``, ``str | None``), with or without postponed
    annotations."""
    if isinstance(field.type, str):
        return field.type
    return field.type.__name__ if isinstance(field.type, type) else str(field.type)


def typed(name: str, value: Any, kind: str) -> Any:
    """A value as its field's type (``int``, ``float | None``, ...); strings from flags and
    YAML scalars both arrive here. Tuples take lists or comma-separated strings."""
    if value is None:
        if "None" in kind:
            return None
        raise UsageError(f"config key {name!r} must not be empty")
    base = kind.split("|")[0].strip()
    try:
        if base == "bool":
            if isinstance(value, str):
                if value.lower() not in _TRUE + _FALSE:
                    raise ValueError(value)
                return value.lower() in _TRUE
            return bool(value)
        if base == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base.startswith("tuple"):
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list | tuple):
                raise ValueError(value)
            return tuple(str(item) for item in value)
        if not isinstance(value, str | int | float):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"config key {name!r} wants {kind}, got {value!r}") from None


def build_config(
    config_class: type[C],
    values: Mapping[str, Any],
    source: str = "",
    parsers: Mapping[str, Callable[[Any], Any]] | None = None,
) -> C:
    """The config from ALIGN's defaults and ``values``: keys checked by name, values typed
    (``parsers`` give a key its own reading, e.g. ``languages: all``)."""
    check_known(values, config_class, source)
    fields, parsers = fields_of(config_class), parsers or {}
    typed_values = {
        name: parsers[name](value) if name in parsers else typed(name, value, kind(fields[name]))
        for name, value in values.items()
    }
    return config_class(**typed_values)


def load_config(
    config_class: type[C],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    shipped: Path,
    read_text: Callable[[str], str] = local_text,
    parsers: Mapping[str, Callable[[Any], Any]] | None = None,
) -> C:
    """Defaults, then the YAML file at ``path`` (or the shipped config of that name), then
    the overrides that are not None."""
    values: dict[str, Any] = {}
    if path is not None:
        path = config_path(path, shipped)
        values = read_config_file(path, read_text)
        check_known(values, config_class, path)
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return build_config(config_class, values, parsers=parsers)


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_class: type,
    helps: Mapping[str, str] | None = None,
) -> None:
    """``--<key>`` for every key of a config, read as text and typed by ``load_config``."""
    helps = helps or {}
    for name, field in fields_of(config_class).items():
        default = field.default if field.default is not dataclasses.MISSING else None
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar="V",
            help=f"{helps.get(name, 'config key')} (default: {default!r})".replace("%", "%%"),
        )


def overrides_from(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config keys given as flags."""
    return {
        name: getattr(args, name)
        for name in fields_of(config_class)
        if getattr(args, name, None) is not None
    }
