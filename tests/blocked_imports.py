"""Runs code in a fresh interpreter where some packages cannot be imported, as in an install
without their extra, and records every attempt to import (or look up) one of them.

A subprocess, because the test process has usually imported TensorFlow already, and
``importlib`` answers from ``sys.modules`` before any finder is asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ("tensorflow", "keras", "keras_hub", "tensorflow_text")
# What a curation-only (worker) install lacks: the train extra, the report's plots, the
# synthetic web's photographs, and frameworks nothing here should pull in by accident.
NOT_IN_A_WORKER = TRAIN + ("tensorboard", "matplotlib", "skimage", "torch", "jax")

BLOCKER = """
import atexit, importlib.abc, json, sys
_BLOCKED, _ATTEMPTS = set({blocked!r}), []


def _importer():  # the file whose code asked for the import, past importlib's frames
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in _BLOCKED):
            # A library probing for an optional backend (Beam's ML package tries torch) is
            # its own business; only what the project's code asks for is recorded.
            if "site-packages" not in _importer():
                _ATTEMPTS.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
atexit.register(lambda: open({record!r}, "w").write(json.dumps(sorted(set(_ATTEMPTS)))))
"""


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    attempted: list[str]  # blocked modules something tried to import or look up


def blocker_source(blocked: Iterable[str], record: Path) -> str:
    """Python source that, run first, makes ``blocked`` unimportable (each a module and its
    submodules: ``tensorflow``, ``google.cloud.bigquery``) and writes the attempts to
    ``record`` at exit."""
    return BLOCKER.format(blocked=sorted(blocked), record=str(record))


def run_without(blocked: Iterable[str], code: str, workdir: Path, timeout: float = 600) -> Outcome:
    """Runs ``code`` (after the blocker) with this interpreter, from the repository root."""
    record = workdir / "attempted.json"
    record.unlink(missing_ok=True)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", blocker_source(blocked, record) + code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    attempted = json.loads(record.read_text()) if record.exists() else ["<no record>"]
    return Outcome(done.returncode, done.stdout, done.stderr, attempted)


def run_command_without(
    blocked: Iterable[str], command: str, argv: list[str], workdir: Path
) -> Outcome:
    """Runs an installed console script (``align-train``) as its shell would, but blocked."""
    script = str(Path(sys.executable).with_name(command))
    code = (
        "import runpy\n"
        f"sys.argv = [{script!r}] + {argv!r}\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n"
    )
    return run_without(blocked, code, workdir)
