"""A real GCS server on 127.0.0.1 (gcp-storage-emulator) that Beam's GcsIO talks to unchanged.

The emulator runs in its own process, as GCS would. Clients find it the documented way:
``STORAGE_EMULATOR_HOST`` (google-cloud-storage, hence Beam's GcsIO). Credentials come from an
Application Default Credentials file holding a ready access token: Beam always asks
``google.auth.default()`` for credentials, and with none it retries with backoff for ~20 s per
process before going anonymous; a token that is already valid needs no network at all. Every
child process (the multi-process DirectRunner's workers, a job run in a subprocess) inherits
both variables.

Use: ``from tests.gcs import gcs_emulator, gcs_dir  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "align-test"
ENVIRONMENT = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")


@dataclass
class GcsEmulator:
    """A running emulator: its endpoint, bucket, and the environment that points clients at it."""

    endpoint: str
    bucket: str
    process: subprocess.Popen
    environment: dict[str, str]

    def url(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])

    def client(self):
        from google.cloud import storage

        return storage.Client(project="align-test")

    def blob_names(self, prefix: str) -> list[str]:
        """Object names under a gs:// prefix, as the server lists them."""
        name = prefix.removeprefix(f"gs://{self.bucket}/")
        return sorted(blob.name for blob in self.client().list_blobs(self.bucket, prefix=name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_token_credentials(path: Path) -> Path:
    """An ADC file (``gcloud auth application-default login`` format) with a valid token."""
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "emulator",
                "client_secret": "emulator",
                "refresh_token": "emulator",
                "token": "emulator-token",
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )
    return path


def wait_until_serving(endpoint: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"GCS emulator exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{BUCKET}", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"GCS emulator did not answer on {endpoint} within {seconds} s")


def start_emulator(workdir: Path) -> GcsEmulator:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gcp_storage_emulator", "-d", str(workdir / "data")]
    command += ["start", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--default-bucket", BUCKET, "--quiet"]
    log = open(workdir / "emulator.log", "wb")  # noqa: SIM115 (lives as long as the server)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(endpoint, process)
    except RuntimeError:
        process.kill()
        raise
    environment = {
        "STORAGE_EMULATOR_HOST": endpoint,
        "GOOGLE_APPLICATION_CREDENTIALS": str(write_token_credentials(workdir / "adc.json")),
        "GOOGLE_CLOUD_PROJECT": "align-test",
    }
    return GcsEmulator(endpoint, BUCKET, process, environment)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """The emulator for the whole session, with this process's environment pointing at it."""
    emulator = start_emulator(tmp_path_factory.mktemp("gcs"))
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    os.environ.update(emulator.environment)
    try:
        yield emulator
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        emulator.process.terminate()
        emulator.process.wait(timeout=30)


@pytest.fixture
def gcs_dir(gcs_emulator: GcsEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh gs:// folder for one test."""
    return gcs_emulator.url(f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}")


def upload(path: str, data: bytes) -> None:
    """Stores bytes as they are (FileSystems would gzip a ``.gz`` name again on the way)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)


def upload_tree(local: Path, remote: str) -> None:
    """Copies every file under a local folder to the same relative names under ``remote``."""
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        upload(f"{remote}/{path.relative_to(local).as_posix()}", path.read_bytes())
