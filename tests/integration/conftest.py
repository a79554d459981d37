"""Fixtures of the cross-cutting integration tests: the GCS emulator (see tests/gcs.py)."""

from tests.gcs import gcs_dir, gcs_emulator

__all__ = ["gcs_dir", "gcs_emulator"]
