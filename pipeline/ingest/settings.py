"""A URL list's formats and columns as align-ingest's flags name them, and its shard size.

Declared apart from job.py (Beam) so the command line reads them without importing Beam, and
apart from cli.py so the job reads them without importing its own command line
(pipeline/download/settings.py does the same for the image flags).
"""

from __future__ import annotations

import argparse

ALL, NONE = "all", "none"  # --extra-cols: every column beside url and caption, or none
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")  # the list formats (formats.py reads them)
INPUT_FORMATS = ("auto", *FORMATS, *(f"{name}.gz" for name in FORMATS if name != "parquet"))
# Output shards when --shards is not given: about this many rows each (img2dataset writes
# 10k; more rows per shard means fewer scratch pieces as lists grow), at least MIN_SHARDS.
SHARD_ROWS = 25_000


def add_list_flags(parser: argparse.ArgumentParser) -> None:
    """How to read the list: its format, its url and caption columns, its extras, its header."""
    parser.add_argument(
        "--input-format",
        "--input_format",
        dest="input_format",
        default="auto",
        choices=INPUT_FORMATS,
        help="by the file name when auto; gzip is recognised by its bytes (default: auto)",
    )
    parser.add_argument(
        "--url-col", "--url_col", dest="url_col", help="the URL column: a name or 0-based position"
    )
    parser.add_argument(
        "--caption-col",
        "--caption_col",
        dest="caption_col",
        help="the caption column: a name or 0-based position",
    )
    parser.add_argument(
        "--extra-cols",
        "--save_additional_columns",
        dest="extra_cols",
        default=ALL,
        help="columns kept beside url and caption: all, none, or a comma-separated list "
        "(default: all)",
    )
    parser.add_argument(
        "--header",
        choices=("auto", "yes", "no"),
        default="auto",
        help="CSV/TSV first line: a header unless it holds a URL, when auto (default: auto)",
    )


def extra_cols(value: str) -> str:
    """img2dataset's ``["similarity","hash"]`` as ``similarity,hash``."""
    value = value.strip()
    if value.startswith("["):
        names = [part.strip().strip("'\"") for part in value.strip("[]").split(",")]
        return ",".join(name for name in names if name) or "none"
    return value
