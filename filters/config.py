"""The filter configuration: every rule's thresholds (filters/rules/, each declared once) as
one frozen dataclass, their defaults ALIGN's values; YAML and flags checked by name.

Loading follows the dialect of every command (commandline/flags.py): ``--config small`` names
the shipped config, a path (local, or any file system the caller's reader knows) a file of
one's own, and each key can be overridden by a typed flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from commandline import flags
from commandline.flags import UsageError
from filters.table import RULES, thresholds

SHIPPED = Path(__file__).parent / "configs"
THRESHOLDS = {threshold.name: threshold for threshold in thresholds()}


class _Methods:
    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict:
        """The values as stats.json records them."""
        return {
            name: threshold.show(value) if threshold.show else value
            for name, threshold in THRESHOLDS.items()
            for value in [getattr(self, name)]
        }

    def replace(self, **changes) -> FilterConfig:
        return dataclasses.replace(self, **changes)


# Defaults are Jia et al. 2021 (ALIGN), section 3, unless a rule's module says otherwise.
FilterConfig = dataclasses.make_dataclass(
    "FilterConfig",
    [(t.name, type(t.default), dataclasses.field(default=t.default)) for t in THRESHOLDS.values()],
    bases=(_Methods,),
    frozen=True,
)
FilterConfig.__module__ = __name__  # pickled by reference, as a class of this module
FilterConfig.__doc__ = "Every rule's thresholds (filters/rules/): ALIGN's values by default."


def _check(config) -> None:
    for name, threshold in THRESHOLDS.items():
        value = getattr(config, name)
        if not threshold.valid.test(value):
            raise UsageError(f"{name} must be {threshold.valid.wants}, got {value!r}")
    for rule in RULES:
        problem = rule.consistent(config) if rule.consistent else None
        if problem:
            raise UsageError(problem)


PARSERS = {name: t.parse for name, t in THRESHOLDS.items() if t.parse}


def config_from_dict(values: Mapping[str, Any] | None, source: str = "") -> FilterConfig:
    """Overrides the defaults with ``values``; an unknown key is an error naming it."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise UsageError(f"{source or 'config'}: expected a mapping of settings")
    return flags.build_config(FilterConfig, values, source, PARSERS)


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_text: Callable[[str], str] = flags.local_text,
) -> FilterConfig:
    """ALIGN's defaults, then a YAML file (a path, or ``small``), then the overrides.

    ``read_text`` reads the file: the local disk by default; the Beam jobs pass a reader
    for gs:// (pipeline.options.read_text), so this module never imports Beam.
    """
    return flags.load_config(
        FilterConfig, path, overrides, shipped=SHIPPED, read_text=read_text, parsers=PARSERS
    )


def small_config_path() -> Path:
    """The shipped config for runs of a few hundred to ~20k pairs."""
    return SHIPPED / "small.yaml"
