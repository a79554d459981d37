"""What becomes of a downloaded image: the defaults and flags of its size and encoding.

Declared apart from imaging.py (OpenCV, Pillow) so align-download's command line reads them
without importing the image stack (pipeline/fetch/settings.py does the same for the fetcher).
"""

from __future__ import annotations

import argparse

from commandline.flags import UsageError
from pipeline.download.plan import DEFAULT_MAX_URLS_PER_HOST, DEFAULT_ROWS_PER_SHARD

DEFAULT_IMAGE_SIZE = 346  # ALIGN: shorter side 346, then a 289 crop in training
DEFAULT_JPEG_QUALITY = 95
DEFAULT_MAX_PIXELS = 64_000_000  # a decompression bomb beyond this never gets decoded


def add_image_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="shorter side")
    parser.add_argument("--upscale", action="store_true", help="also enlarge smaller images")
    parser.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, help="1-100")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="decompression-bomb cap"
    )


def add_plan_flags(parser: argparse.ArgumentParser) -> None:
    """How the download plans its fetch lists: each host's budget in this run, shard size."""
    group = parser.add_argument_group("planning (each host's share of this run)")
    group.add_argument(
        "--max-urls-per-host",
        type=int,
        default=DEFAULT_MAX_URLS_PER_HOST,
        help="a host's first N URLs (by uid) are fetched in this run; the rest are deferred "
        "to <output>/deferred/ for a later run (0: no limit)",
    )
    group.add_argument(
        "--max-seconds-per-host",
        type=float,
        default=0.0,
        help="a host fetched this long starts no more requests in this run; its other URLs "
        "are deferred (0: no limit; a run that hits it is not byte-reproducible)",
    )
    group.add_argument(
        "--rows-per-shard",
        type=int,
        default=DEFAULT_ROWS_PER_SHARD,
        help="pairs per fetch list and image shard (a host with more is split over up to "
        "--per-host-concurrency lists that share its caps)",
    )


def check_plan_flags(args: argparse.Namespace) -> None:
    if args.max_urls_per_host < 0 or args.max_seconds_per_host < 0:
        raise UsageError("--max-urls-per-host and --max-seconds-per-host must not be negative")
    if args.rows_per_shard <= 0:
        raise UsageError("--rows-per-shard must be positive")


def check_image_flags(args: argparse.Namespace) -> None:
    for name in ("image_size", "jpeg_quality", "max_pixels"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    if not 1 <= args.jpeg_quality <= 100:
        raise UsageError("--jpeg-quality must be between 1 and 100")


def add_archive_flags(parser: argparse.ArgumentParser) -> None:
    """Images read from web archives (WARC/ARC) before the live web (docs/archive.md)."""
    group = parser.add_argument_group("archives (images from WARC/ARC captures)")
    group.add_argument(
        "--archive",
        metavar="GLOB",
        help="WARC/ARC files (local or gs://): a pair whose image URL was captured there gets "
        "the captured bytes (same file as its page, else nearest in time, else latest)",
    )
    group.add_argument(
        "--archive-only",
        action="store_true",
        help="make no network request: pairs not in the archive are rejected as not_in_archive",
    )

    group.add_argument(
        "--archive-index",
        metavar="GLOB",
        help="CDXJ index files of the --archive files (pywb/Wayback style): the captures are "
        "read from them instead of an index pass over the archive",
    )


def check_archive_flags(args: argparse.Namespace) -> None:
    if (args.archive_only or args.archive_index) and not args.archive:
        raise UsageError("--archive-only and --archive-index need --archive GLOB")
