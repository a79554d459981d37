"""``python -m pipeline.purge``: the align-purge command."""

from pipeline.purge.cli import main

main()
