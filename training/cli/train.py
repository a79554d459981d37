"""align-train: trains ALIGN's dual encoder on the training shards, resumable, then exports it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, exits_cleanly, importing_frameworks
from training import config as config_lib


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-train", description=__doc__.split("\n")[0])
    parser.add_argument("--shards", required=True, help="TFRecord glob or align-filter dir")
    parser.add_argument("--vocab", required=True, help="align-vocab's vocabulary file")
    parser.add_argument("--model-dir", required=True, help="checkpoints, TensorBoard, export")
    parser.add_argument("--config", help="YAML config (a path, or 'small' / 'align')")
    parser.add_argument("--tpu", help="TPU name or grpc:// address: use TPUStrategy")
    parser.add_argument("--cpu-replicas", type=int, default=0, help="mirror over N logical CPUs")
    parser.add_argument("--eval-zero-shot", help="zero-shot eval folder (classes.txt + images)")
    parser.add_argument("--eval-retrieval", help="retrieval eval folder (captions.json)")
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps")
    parser.add_argument(
        "--eval-attributes", help="zero-shot class-name words, e.g. 'colour,shape' (align-eval)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_output_flags(parser)
    config_lib.add_override_flags(parser.add_argument_group("config overrides"))
    return parser


@exits_cleanly("align-train")
def run(argv: Sequence[str] | None = None) -> dict:
    """Trains (or resumes) and exports; returns the step, history, export path and model."""
    args = build_parser().parse_args(argv)
    config = config_lib.load_config(args.config, **config_lib.overrides_from(args))
    with importing_frameworks(args.verbose):
        # TensorFlow and Keras take ~5 s to import (python -X importtime, quiet machine).
        from training import train  # noqa: PLC0415 - see above

    return train.train(args, config)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-train console script: returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
