"""Plays a Dataflow worker offline: install the staged package, then unpickle the staged graph.

Dataflow workers start from a bare SDK container, ``pip install`` the staged sdist
(``workflow.tar.gz``) with its core dependencies (no extras) and unpickle the job's DoFns.
This helper does the same in a fresh interpreter that cannot see the checkout (the editable
install's finder is removed and the working directory is elsewhere) nor import what the
core leaves out (the training stack, the plots: tests/blocked_imports.py), so a step that
needs code outside the package, or an extra, fails here as it would on Dataflow.

``ALIGN_WORKER_PYTHON=/path/to/venv/bin/python`` loads the graphs with another interpreter,
e.g. a real worker install, core + gcp (``bench/install.py --keep`` leaves one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.blocked_imports import NOT_IN_A_WORKER, blocker_source
from tools.dataflow import read_bytes, read_template, staged_packages

LOAD_AS_A_WORKER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in repr(h)]
sys.path.insert(0, {site!r})
import pipeline
assert pipeline.__file__.startswith({site!r}), pipeline.__file__
from tools.dataflow import load_pipeline, pipeline_proto, read_template
for template in {templates!r}:
    try:
        load_pipeline(pipeline_proto(read_template(template)))
        print("loaded", template)
    except Exception as error:
        print("failed", template, type(error).__name__, error)
"""


def worker_python() -> str:
    return os.environ.get("ALIGN_WORKER_PYTHON") or sys.executable


def install_staged_package(template_path: str, workdir: Path) -> Path:
    """Downloads the job's staged sdist and pip-installs it (no deps, offline) into a folder."""
    sdist = workdir / "workflow.tar.gz"
    sdist.write_bytes(read_bytes(staged_packages(read_template(template_path))["workflow.tar.gz"]))
    site = workdir / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(site), str(sdist)]
    subprocess.run(command, check=True, cwd=workdir, capture_output=True)
    return site


def load_as_a_worker(template_paths: list[str], site: Path) -> dict[str, str]:
    """Rebuilds each staged pipeline in one fresh interpreter that sees only the installed
    package; returns template -> "loaded" or the error that stopped it."""
    script = LOAD_AS_A_WORKER.format(site=str(site), templates=list(template_paths))
    script = blocker_source(NOT_IN_A_WORKER, site.parent / "attempted.json") + script
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [worker_python(), "-c", script],
        cwd=site,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = {
        path: f"no answer (exit {done.returncode}): {done.stderr[-2000:]}"
        for path in template_paths
    }
    for line in done.stdout.splitlines():
        verdict, path, *error = line.split(" ", 2)
        if path in outcomes:
            outcomes[path] = "loaded" if verdict == "loaded" else " ".join(error)
    return outcomes
