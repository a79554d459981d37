"""The gcp extra is what Beam's GCS filesystem and Dataflow runner import, with Beam's own
bounds, and no more: not the ~80 Google Cloud connectors of ``apache-beam[gcp]``.

A real ``[gcp]`` venv is measured and used by bench/install.py; here the same install is
played by hiding every package the core and the extra do not bring (tests/gcp_install.py).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.blocked_imports import run_without
from tests.gcp_install import LAUNCHER_CHECK, modules_outside, normalised

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GCP = PROJECT["optional-dependencies"]["gcp"]
PYTHONS = ("3.11", "3.12", "3.13", "3.14")


def bounds(requirements: list[str], python: str, extra: str = "") -> dict[str, str]:
    """name -> version specifier of the requirements that apply on ``python``."""
    applying = {}
    for line in requirements:
        requirement = Requirement(line)
        environment = {"python_version": python, "extra": extra}
        if requirement.marker is None or requirement.marker.evaluate(environment):
            applying[normalised(requirement.name)] = str(requirement.specifier)
    return applying


def test_the_gcp_extra_has_the_bounds_of_beams_own_gcp_extra_on_every_python():
    beam = metadata.requires("apache-beam")
    for python in PYTHONS:
        ours = bounds(GCP, python)
        theirs = bounds(beam, python, extra="gcp")
        assert ours == {name: theirs[name] for name in ours}, python


def test_the_gcp_extra_leaves_out_beams_other_google_cloud_connectors():
    connectors = {"google-cloud-bigquery", "google-cloud-pubsub", "google-cloud-spanner"}
    connectors |= {"google-cloud-bigtable", "google-cloud-aiplatform", "google-cloud-dlp"}
    names = {normalised(Requirement(line).name) for line in GCP}
    assert not names & (connectors | {"apache-beam"})


def test_the_dataflow_runner_and_gcs_filesystem_import_with_only_the_core_and_gcp(tmp_path):
    hidden = modules_outside(PROJECT["dependencies"] + GCP)
    assert {"tensorflow", "keras"} <= hidden  # installed here, but not by core + gcp
    outcome = run_without(hidden, LAUNCHER_CHECK, tmp_path)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.stdout.strip().endswith("all import"), outcome.stdout
