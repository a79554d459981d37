"""The one command-line and config dialect of every align-* command; imports no Beam, no TensorFlow.

- A bad flag, path or value is a ``UsageError``; ``exits_cleanly`` prints it as
  ``prog: error: message`` in one line and exits 2, never a traceback; so is a feature used
  without its extra (``MissingExtra``, commandline/extras.py), which names the extra to install.
- Quiet by default: TensorFlow's C++ and absl logs, Beam's worker warnings and the
  frameworks' Python warnings are off (``quiet_frameworks``, ``muted_stderr``) unless
  ``-v/--verbose``; the frameworks are imported after parsing, so ``--help`` is instant.
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
import contextlib
import dataclasses
import functools
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from commandline.extras import MissingExtra

C = TypeVar("C")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class UsageError(ValueError):
    """A bad flag, path or config value: reported in one line, never as a traceback."""


def exits_cleanly(prog: str) -> Callable:
    """Turns UsageError (a missing input, a missing extra) into ``prog: error: message`` and
    exit 2, and Ctrl-C into ``prog: interrupted`` and exit 130, never a traceback."""

    def decorate(run: Callable) -> Callable:
        @functools.wraps(run)
        def wrapper(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except (UsageError, FileNotFoundError, MissingExtra) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                raise SystemExit(2) from None
            except KeyboardInterrupt:
                print(f"\n{prog}: interrupted", file=sys.stderr)
                raise SystemExit(130) from None

        return wrapper

    return decorate


def check_at_least(args: argparse.Namespace, minimums: Mapping[str, float]) -> None:
    """``--flag must be at least N`` for the first given flag below its minimum."""
    for name, minimum in minimums.items():
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {minimum}")


# --- what a command prints -------------------------------------------------------------------

DEFAULT_PROGRESS_EVERY = 30.0  # seconds between progress lines in a log (not a terminal)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``--progress-every``, the same in every command."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print TensorFlow's and Beam's own logs and warnings",
    )
    group.add_argument(
        "--progress-every",
        type=float,
        default=DEFAULT_PROGRESS_EVERY,
        metavar="SECONDS",
        help="seconds between progress lines when the output is not a terminal "
        "(a log, CI); a terminal gets one live line (default: %(default)s)",
    )


# Python loggers of the frameworks: their INFO and WARNING lines are the frameworks talking
# to their own developers ("Discarding unparseable args", "No semi_persistent_directory",
# a worker's start-up), not to our user; errors still show.
FRAMEWORK_LOGGERS = ("apache_beam", "tensorflow", "absl", "keras", "h5py")
FRAMEWORK_MODULES = r"(apache_beam|tensorflow|keras|keras_hub|absl|tf_keras)(\.|$)"


def quiet_frameworks(verbose: bool) -> None:
    """TensorFlow's C++ logs, the frameworks' INFO/WARNING logs and Python warnings off,
    unless ``verbose``. Call it before importing TensorFlow: its C++ log level is read once,
    from the environment (which worker processes inherit)."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=FRAMEWORK_MODULES)


@contextlib.contextmanager
def muted_stderr(verbose: bool) -> Iterator[None]:
    """Holds back what native libraries write straight to file descriptor 2 while the block
    runs, e.g. TensorFlow's import ("All log messages before absl::InitializeLog() is called
    are written to STDERR", oneDNN, CUDA): no log level reaches those lines. Nothing is held
    back with ``verbose``; what was held back is dropped (a failed import raises its own
    one-line error)."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def importing_frameworks(verbose: bool) -> Iterator[None]:
    """Wrap a command's late import of TensorFlow/Keras (after its flags are parsed): their
    logs quieted, and their start-up lines on stderr held back, unless ``verbose``."""
    quiet_frameworks(verbose)
    with muted_stderr(verbose):
        yield


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
        if isinstance(default, tuple):  # shown as it is written: --languages en,fr
            default = ",".join(map(str, default))
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
