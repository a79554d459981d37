"""Which optional part of the install a feature needs, said in one line when it is missing.

The curation jobs (crawl, download, filter) need only the core install, which is what a
Dataflow worker gets from the sdist that ``--setup_file`` stages. The trainer, the NSFW
hook's TensorFlow, the report's plots and the synthetic web's photographs are extras
(pyproject.toml); a command used without its extra names the one to install instead of
ending in a ModuleNotFoundError traceback.

The check looks the modules up (``importlib.util.find_spec``) without importing them, so it
costs milliseconds, not TensorFlow's seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# The modules each extra of pyproject.toml brings, as imported.
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("tensorflow", "keras", "keras_hub", "tensorflow_text"),
    "report": ("matplotlib",),
    "synthweb": ("skimage",),
}
EXTRAS["demo"] = EXTRAS["train"] + EXTRAS["report"] + EXTRAS["synthweb"]


class MissingExtra(ImportError):
    """A feature used without the extra that installs its modules."""

    def __init__(self, extra: str, module: str, needed_by: str):
        super().__init__(
            f"{needed_by} needs the '{extra}' extra (no module "
            f"{module!r}): pip install 'align-recipe[{extra}]'",
            name=module,
        )
        self.extra, self.needed_by = extra, needed_by

    def __reduce__(self):  # raised in a worker process, it must unpickle in its parent
        return MissingExtra, (self.extra, self.name, self.needed_by)


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a finder that refuses it; a module without a spec
        return True


def require(extra: str, needed_by: str) -> None:
    """Raises MissingExtra (an ImportError) when a module of ``extra`` is not installed."""
    for module in EXTRAS[extra]:
        if _absent(module):
            raise MissingExtra(extra, module, needed_by)


def running_command() -> str | None:
    """The align-* console script this process runs, or None (a library caller, pytest)."""
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return name if name.startswith("align-") else None


def require_at_import(extra: str, needed_by: str) -> None:
    """For a package whose every module imports ``extra``, before any of them does: run as an
    align-* command, ``prog: error: ...`` in one line and exit 2, as the commands' other
    usage errors (commandline/flags.py); imported by a library caller, MissingExtra."""
    try:
        require(extra, needed_by)
    except MissingExtra as missing:
        prog = running_command()
        if prog is None:
            raise
        print(f"{prog}: error: {missing}", file=sys.stderr)
        raise SystemExit(2) from None
