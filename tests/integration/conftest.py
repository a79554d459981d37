"""Fixtures of the cross-cutting integration tests: the GCS emulator (see tests/gcs.py) and
one clean local run of the whole curation chain, the reference other runs must match."""

import shutil

import pytest

from tests.gcs import gcs_dir, gcs_emulator
from tests.integration.chain import run_chain

__all__ = ["gcs_dir", "gcs_emulator", "local_chain"]


@pytest.fixture(scope="session")
def local_chain(synthetic_web, tmp_path_factory) -> dict[str, str]:
    """crawl -> filter text -> download -> filter all on local disk, in-process."""
    root = tmp_path_factory.mktemp("local_chain")
    shutil.copytree(synthetic_web.root / "warc", root / "warc")
    return run_chain(str(root), f"{synthetic_web.eval_zero_shot}/*/*.jpg", [])
