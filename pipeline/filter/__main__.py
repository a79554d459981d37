"""``python -m pipeline.filter``: the align-filter command."""

from pipeline.filter.job import main

main()
