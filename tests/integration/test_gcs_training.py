"""gs:// for the trainer: align-vocab and align-train read shards from, and write their
vocabulary, checkpoints and export to, the local GCS server through TensorFlow's own client.

TensorFlow cannot be pointed at an emulator; it is reached through a local TLS proxy
(tests/gcs_tls_proxy.py). The jobs run in a fresh process so TensorFlow starts with the
proxy settings, as it would start with real credentials on a TPU VM.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gcs import upload_tree
from tests.gcs_tls_proxy import TlsProxy
from training.cli import vocab

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SMALL = ["--config", "small", "--image-size", "32", "--resize-size", "38", "--batch-size", "8"]
SMALL += ["--max-tokens", "16", "--quiet", "--steps", "4", "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def tf_environment(gcs_emulator, tmp_path_factory):
    proxy = TlsProxy(gcs_emulator.endpoint, tmp_path_factory.mktemp("tls"))
    yield {**os.environ, **proxy.environment}
    proxy.close()


def run_module(module: str, argv: list[str], environment: dict) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_on_gcs(gcs_emulator, local_chain, tf_environment):
    root = gcs_emulator.url("training")
    upload_tree(Path(local_chain["all"]) / "shards", f"{root}/shards")
    vocab_argv = ["--shards", f"{root}/shards", "--output", f"{root}/vocab.txt"]
    run_module("training.cli.vocab", vocab_argv + ["--vocab-size", "300"], tf_environment)
    train_argv = ["--shards", f"{root}/shards", "--vocab", f"{root}/vocab.txt"]
    run_module(
        "training.cli.train", train_argv + ["--model-dir", f"{root}/model"] + SMALL, tf_environment
    )
    return root


def test_vocabulary_learned_from_gcs_matches_the_local_one(trained_on_gcs, local_chain, tmp_path):
    local = tmp_path / "vocab.txt"
    vocab.run(["--shards", f"{local_chain['all']}/shards", "--output", str(local)]
              + ["--vocab-size", "300"])  # fmt: skip
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(f"{trained_on_gcs}/vocab.txt") as handle:
        assert handle.read() == local.read_bytes()


def test_training_writes_checkpoints_and_export_to_gcs(trained_on_gcs, gcs_emulator):
    names = gcs_emulator.blob_names(f"{trained_on_gcs}/model")
    relative = [name.split("/model/", 1)[1] for name in names]
    assert any(name.startswith("checkpoints/") for name in relative), relative
    for exported in ("image_encoder.keras", "text_encoder.keras", "vocab.txt", "encoders.json"):
        assert f"export/{exported}" in relative
