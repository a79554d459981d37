"""What a purge writes beside a folder's stats.json: the purge record, and the stats updated
so they still balance. Pure functions over documents; job.py reads and writes them.

A removed row is taken off the count it was under: ``kept`` (a row of the job's output) or
``rejected/<reason>`` (a row of ``rejects/``, or a failed download), and moves to
``rejected/purged``, so ``in = kept + rejected`` still holds. align-crawl counts pages, not
pairs, so there a removed pair moves from ``pairs/written`` to ``pairs/purged`` and the
pages stay as they were. Every stats.json also counts ``purged/<reason>`` (rows, by the
list entry's kind), ``purged/kept`` the rows taken from its output (so the next job's ``in``
is still ``kept + purged/kept``), and names its purge records under ``purges``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

PURGED = "purged"
PURGED_KEPT = "purged/kept"  # rows removed from the job's output (kept), in counts
CRAWL = "align-crawl"


def tally_removed(removed: Iterable[tuple[str, str | None]]) -> tuple[Counter, Counter]:
    """(rows by bucket, rows by reason) of the counted rows removed from a folder."""
    buckets, reasons = Counter(), Counter()
    for reason, bucket in removed:
        if bucket is not None:
            buckets[bucket] += 1
            reasons[reason] += 1
    return buckets, reasons


def updated_stats(stats: dict, removed: list[tuple[str, str | None]], record_name: str) -> dict:
    """``stats`` with the removed rows moved to the purge's counts (see the module doc)."""
    stats = {
        **stats,
        "rejected": dict(stats.get("rejected", {})),
        "counts": dict(stats.get("counts", {})),
    }
    buckets, reasons = tally_removed(removed)
    counts, rejected = stats["counts"], stats["rejected"]
    total = sum(buckets.values())
    if stats.get("job") == CRAWL:
        counts["pairs/written"] = counts.get("pairs/written", 0) - total
        counts["pairs/purged"] = counts.get("pairs/purged", 0) + total
    else:
        for bucket, n in buckets.items():
            if bucket == "kept":
                stats["kept"] = stats.get("kept", 0) - n
            else:
                reason = bucket.removeprefix("rejected/")
                rejected[reason] = rejected.get(reason, 0) - n
                if rejected[reason] == 0:
                    del rejected[reason]
        if total:
            rejected[PURGED] = rejected.get(PURGED, 0) + total
        if buckets["kept"]:  # what the next job read, less this: the report's chain check
            counts[PURGED_KEPT] = counts.get(PURGED_KEPT, 0) + buckets["kept"]
    for reason, n in reasons.items():
        counts[f"purged/{reason}"] = counts.get(f"purged/{reason}", 0) + n
    stats["rejected"] = dict(sorted(rejected.items()))
    stats["counts"] = dict(sorted(counts.items()))
    stats["balanced"] = stats.get("in", 0) == stats.get("kept", 0) + sum(rejected.values())
    stats["purges"] = [*stats.get("purges", []), record_name]
    return stats


def purge_record(
    list_path: str, list_digest: str, entries: int, when: str, files: list[dict]
) -> dict:
    """The purge record of one folder: which list, when, and what left which file."""
    reasons = Counter()
    for entry in files:
        reasons.update(entry["removed"])
    return {
        "job": "align-purge",
        "list": list_path,
        "list_sha256": list_digest,
        "entries": entries,
        "when": when,
        "removed": dict(sorted(reasons.items())),
        "files": sorted(files, key=lambda entry: entry["file"]),
    }
