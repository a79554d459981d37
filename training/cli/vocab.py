"""align-vocab: learns the WordPiece vocabulary from the training shards' text (ALIGN: 100k)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, exits_cleanly, importing_frameworks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-vocab", description=__doc__)
    parser.add_argument("--shards", required=True, help="TFRecord/Parquet glob or a filter dir")
    parser.add_argument("--output", required=True, help="vocabulary file to write")
    parser.add_argument("--vocab-size", type=int, default=100_000, help="ALIGN: 100k")
    parser.add_argument("--cased", action="store_true", help="keep case (default: lowercase)")
    add_output_flags(parser)
    return parser


@exits_cleanly("align-vocab")
def run(argv: Sequence[str] | None = None) -> list[str]:
    """Learns and writes the vocabulary; returns its pieces."""
    args = build_parser().parse_args(argv)
    with importing_frameworks(args.verbose):
        # TensorFlow takes ~4 s to import (python -X importtime, quiet machine): after parsing.
        from training import vocab  # noqa: PLC0415 - see above

    return vocab.build_vocabulary(args)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-vocab console script: returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
