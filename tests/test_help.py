"""Every console script answers ``--help`` before importing a framework, and says nothing else.

TensorFlow, Keras and Beam take seconds to import and print start-up logs; a command imports
them only once its flags are parsed (commandline/flags.py). Checked by the modules loaded, not by
a clock (bench/cli.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
FRAMEWORKS = ("tensorflow", "keras", "keras_hub", "apache_beam")

# Runs a console script's entry point with --help in a fresh interpreter, then lists the
# frameworks it loaded.
PROBE = """
import importlib, json, sys
entry, script, frameworks = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
module, _, name = entry.partition(":")
sys.argv = [script, "--help"]
try:
    getattr(importlib.import_module(module), name)()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(frameworks))
print("LOADED " + json.dumps(loaded), file=sys.stderr)
"""


def help_of(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, SCRIPTS[script], script, json.dumps(FRAMEWORKS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_imports_no_framework_and_prints_only_the_help(script):
    done = help_of(script)
    *noise, loaded = done.stderr.strip().splitlines()
    assert json.loads(loaded.removeprefix("LOADED ")) == []
    assert noise == []
    assert done.stdout.startswith(f"usage: {script}")
