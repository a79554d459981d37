"""The policy record: every robots.txt the download applied, kept beside the images.

One Parquet file per fetch list under ``<output>/policies/`` (host, origin, file, HTTP status,
outcome, sha256 and size of the bytes, fetch time): the record that a site's wishes were
checked when its images were fetched. Written before the list's image shard, so a finished
shard always has its record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pyarrow as pa

from pipeline.fetch.robots import PolicyRecord
from pipeline.fetch.units import UnitOf

POLICIES_FOLDER = "policies"
POLICY_SCHEMA = pa.schema(
    [
        ("host", pa.string()),  # the unit of politeness the file was fetched for
        ("origin", pa.string()),
        ("file", pa.string()),  # robots.txt
        ("http_status", pa.int32()),
        ("outcome", pa.string()),  # rules, missing or unreachable
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("fetched_at", pa.string()),
    ]
)


def policy_table(records: Sequence[PolicyRecord], unit_of: UnitOf) -> pa.Table:
    """The records as a table, in a fixed order (host, origin, file)."""
    rows = [
        {"host": unit_of(record.origin + "/") or "", **dataclasses.asdict(record)}
        for record in records
    ]
    rows.sort(key=lambda row: (row["host"], row["origin"], row["file"]))
    return pa.Table.from_pylist(rows, schema=POLICY_SCHEMA)
