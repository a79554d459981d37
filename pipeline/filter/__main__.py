"""``python -m pipeline.filter``: the align-filter command."""

from pipeline.filter.cli import main

main()
