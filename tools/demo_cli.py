"""align-demo: the whole recipe on a synthetic web (tools/demo.py), or with --experiment ALIGN's
curation claims over seeds (tools/experiment.py).

The command line only: it parses the flags, checks the demo's extra, and hands over, so the
demo and the experiment (which builds on the demo's stages) never import each other in a circle.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from commandline.extras import require
from commandline.flags import exits_cleanly
from tools import demo, experiment


@exits_cleanly("align-demo")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the demo (or the experiment); returns its manifest."""
    args = demo.build_parser().parse_args(argv)
    require("demo", "the demo (synthetic web, curation, report plots, training)")
    if args.experiment:
        args.run_dir = args.run_dir or "runs/experiment"
        args.steps = args.steps or demo.EXPERIMENT_STEPS
        return experiment.run_experiment(args)
    return demo.run_demo(args)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-demo console script: returns None on success (exit 0); a failed stage is
    one message with its log's tail and exit 1."""
    try:
        run(argv)
    except RuntimeError as error:
        print(f"align-demo: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
