"""What the ``gcp`` extra must make importable, and what an install of some parts lacks.

The extra is a narrow list (pyproject.toml): the packages Beam's GCS filesystem and its
Dataflow runner import, not all of ``apache-beam[gcp]``. Beam imports several of them inside
functions or under ``try/except ImportError`` (credentials, the GCS filesystem's
registration), where a missing package fails silently or only when a job is submitted, so
``LAUNCHER_CHECK`` imports those too and checks the silent fallbacks did not happen. It runs
in a real ``[gcp]`` venv (bench/install.py) and, in the test environment, behind an import
blocker that hides every package the core and ``gcp`` do not install (tests/test_gcp_extra.py).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement

LAUNCHER_CHECK = """
import importlib, pkgutil
import apache_beam.runners.dataflow as dataflow

# Beam's test helpers under runners/dataflow need its test extra (hamcrest): not a launcher's.
TEST_HELPERS = ("_test", "test_dataflow_runner", "dataflow_exercise_")
modules = [m.name for m in pkgutil.walk_packages(dataflow.__path__, dataflow.__name__ + ".")
           if not any(part in m.name for part in TEST_HELPERS)]
modules += ["apache_beam.io.gcp.gcsio", "apache_beam.io.gcp.gcsfilesystem",
            "apache_beam.io.gcp.gcsio_retry", "apache_beam.internal.gcp.auth",
            "apache_beam.internal.gcp.json_value",
            # what those modules import inside functions, at submission or staging
            "google.cloud.dataflow", "google.cloud.resourcemanager_v3", "google.cloud.exceptions",
            "google.cloud.storage.fileio", "google.api_core.client_info",
            "google.auth.impersonated_credentials", "google_auth_httplib2"]
failed = []
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")

from apache_beam.internal.gcp import auth
from apache_beam.io.filesystems import FileSystems

if not auth._GOOGLE_AUTH_AVAILABLE:  # Beam would go anonymous without a word
    failed.append("apache_beam.internal.gcp.auth: google-auth unavailable")
try:
    FileSystems.get_filesystem("gs://bucket/object")
except ValueError as error:  # registration is skipped on an ImportError
    failed.append(f"gs:// not registered: {error}")
print(f"LAUNCHER {len(modules)} modules;", "; ".join(failed) or "all import")
"""


# The project itself and what every venv has: never hidden.
EVERY_VENV = {"align-recipe", "pip", "setuptools", "wheel"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_by(requirements: list[str]) -> set[str]:
    """The distributions (normalised names) an install of ``requirements`` holds, resolved
    through the metadata of this environment, extras included (``google-api-core[grpc]``)."""
    found: dict[str, set[str]] = {}
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = normalised(requirement.name)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        extras = set(requirement.extras)
        if name in found and extras <= found[name]:
            continue
        found[name] = found.get(name, set()) | extras
        for line in metadata.requires(name) or []:
            dependency = Requirement(line)
            wanted = [""] + sorted(found[name])
            if not dependency.marker or any(
                dependency.marker.evaluate({"extra": e}) for e in wanted
            ):
                dependency.marker = None
                pending.append(dependency)
    return set(found)


def import_prefix(path: str) -> str | None:
    """The importable name a distribution's file belongs to (``google/cloud/bigquery/x.py``
    -> ``google.cloud.bigquery``: ``google`` and ``google.cloud`` are shared namespaces)."""
    parts = path.split("/")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.py|\..*\.so|\.so)?", parts[0]):
        return None  # ../bin, *.dist-info, *.pth
    depth = 3 if parts[:2] == ["google", "cloud"] else 2 if parts[0] == "google" else 1
    if len(parts) < depth:
        return None
    names = [part.split(".")[0] for part in parts[:depth]]
    return ".".join(names)


def modules_outside(requirements: list[str]) -> set[str]:
    """Importable names that only distributions outside an install of ``requirements`` own.
    A backport of a standard-library module (the ``dataclasses`` distribution that an old
    package pulls in) is never one: Python's own module answers wherever the backport is
    absent."""
    inside = installed_by(requirements) | EVERY_VENV
    owners: dict[str, set[str]] = {}
    for distribution in metadata.distributions():
        name = normalised(distribution.metadata["Name"])
        for file in distribution.files or []:
            prefix = import_prefix(str(file))
            if prefix:
                owners.setdefault(prefix, set()).add(name)
    return {
        prefix
        for prefix, names in owners.items()
        if not names & inside and prefix not in sys.stdlib_module_names
    }
