"""The policy record: every policy file the download applied, kept beside the images.

One Parquet file per fetch list under ``<output>/policies/`` (host, origin, file, HTTP status,
outcome, sha256 and size of the bytes, fetch time, source): the record that a site's wishes
were checked when its images were fetched. Files fetched live have no source; files read
from a web archive (--archive) have their record's ``file@offset`` as source and their
capture time as fetch time. Written before the list's image shard, so a finished shard
always has its record.
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
        ("file", pa.string()),  # robots.txt, ai.txt or tdmrep.json
        ("http_status", pa.int32()),
        ("outcome", pa.string()),  # rules, missing or unreachable
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("fetched_at", pa.string()),  # for an archived file: its capture time
        ("source", pa.string()),  # an archived file's file@offset; null: fetched live
    ]
)


def policy_table(records: Sequence[PolicyRecord], unit_of: UnitOf) -> pa.Table:
    """The records as a table, in a fixed order (host, origin, file)."""
    rows = [
        {"host": unit_of(record.origin + "/") or "", **dataclasses.asdict(record)}
        for record in records
    ]
    rows.sort(key=lambda row: (row["host"], row["origin"], row["file"], row["source"] or ""))
    return pa.Table.from_pylist(rows, schema=POLICY_SCHEMA)
