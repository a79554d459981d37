"""align-eval: zero-shot classification and image-text retrieval of an exported model."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import UsageError, add_output_flags, exits_cleanly, importing_frameworks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align-eval",
        description="Zero-shot classification and image-text retrieval of an exported model.",
    )
    parser.add_argument("--model-dir", required=True, help="align-train's --model-dir or export")
    parser.add_argument("--zero-shot", help="class-per-folder tree or path,label CSV")
    parser.add_argument("--retrieval", help="folder with captions.json and images/")
    parser.add_argument("--captions", help="Karpathy JSON, if not <retrieval>/captions.json")
    parser.add_argument("--split", default="test", help="Karpathy split to use ('all': every)")
    parser.add_argument("--templates", help="prompt templates, one per line, each with '{}'")
    parser.add_argument(
        "--attributes",
        help="names of the words of compositional class names, e.g. 'colour,shape' for "
        "'red circle': adds each attribute's own top-1",
    )
    parser.add_argument("--output", help="write the metrics JSON here")
    parser.add_argument(
        "--batch-size", type=int, help="inputs per forward pass (default: the encoders' own)"
    )
    parser.add_argument("--top-confusions", type=int, default=10)
    add_output_flags(parser)
    return parser


@exits_cleanly("align-eval")
def run(argv: Sequence[str] | None = None) -> dict:
    """Evaluates and returns the metrics (what ``--output`` holds)."""
    args = build_parser().parse_args(argv)
    if not (args.zero_shot or args.retrieval):
        raise UsageError("give --zero-shot DIR, --retrieval DIR or both")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be positive")
    with importing_frameworks(args.verbose):
        # TensorFlow and Keras take ~5 s to import (python -X importtime, quiet machine).
        from training import evaluate  # noqa: PLC0415 - see above

    return evaluate.evaluate(args)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-eval console script: returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
