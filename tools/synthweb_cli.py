"""align-synthweb: a deterministic synthetic web (pages, images, WARC/WAT, ground truth, eval
sets) for tests and the demo.

The command line; the generator (tools/synthweb.py: pyarrow, Pillow, scikit-image, warcio)
is imported after parsing, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import UsageError, exits_cleanly


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-synthweb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="directory to write the web into")
    parser.add_argument("--pairs", type=int, help="about N pairs (default: WebConfig's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=8000, help="the port URLs embed")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes")
    parser.add_argument("--serve", action="store_true", help="serve the web until interrupted")
    return parser


@exits_cleanly("align-synthweb")
def run(argv: Sequence[str] | None = None) -> dict:
    """The align-synthweb command (exits 2 with one line on a bad flag); returns the web's
    manifest (also DIR/web.json)."""
    args = build_parser().parse_args(argv)
    if args.pairs is not None and args.pairs < 50:
        raise UsageError(f"--pairs must be at least 50, got {args.pairs}")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    # tools.synthweb takes ~0.6 s to import (python -X importtime, busy 2-core machine).
    from tools import synthweb  # noqa: PLC0415 - see above

    return synthweb.build(args)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-synthweb console script: runs it; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
