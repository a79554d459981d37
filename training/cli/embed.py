"""align-embed: embed images or texts to Parquet; query an index."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import UsageError, add_output_flags, exits_cleanly, importing_frameworks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align-embed", description="Embed images or texts to Parquet; query an index."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    images = commands.add_parser("images", help="embed every image under a folder")
    texts = commands.add_parser("texts", help="embed each line of a text file")
    for sub, what in ((images, "folder of images"), (texts, "text file, one text per line")):
        sub.add_argument("--model-dir", required=True)
        sub.add_argument("--input", required=True, help=what)
        sub.add_argument("--output", required=True, help="Parquet file to write")
        sub.add_argument(
            "--batch-size", type=int, help="inputs per forward pass (default: the encoders' own)"
        )
    query = commands.add_parser("query", help="nearest items of an index to a text or image")
    query.add_argument("--model-dir", required=True)
    query.add_argument("--index", required=True, help="Parquet file from 'images' or 'texts'")
    what = query.add_mutually_exclusive_group(required=True)
    what.add_argument("--text")
    what.add_argument("--image")
    query.add_argument("--k", type=int, default=5)
    for sub in (images, texts, query):
        add_output_flags(sub)
    return parser


@exits_cleanly("align-embed")
def run(argv: Sequence[str] | None = None) -> dict | list[dict]:
    """Runs a subcommand; returns its summary (images, texts) or its results (query)."""
    args = build_parser().parse_args(argv)
    batch_size = getattr(args, "batch_size", None)
    if (batch_size is not None and batch_size < 1) or getattr(args, "k", 1) < 1:
        raise UsageError("--batch-size and --k must be positive")
    with importing_frameworks(args.verbose):
        # TensorFlow and Keras take ~5 s to import (python -X importtime, quiet machine).
        from training import embed  # noqa: PLC0415 - see above

    return embed.query(args) if args.command == "query" else embed.embed(args)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-embed console script: returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
