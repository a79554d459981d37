"""``python -m pipeline.download``: the align-download command."""

from pipeline.download.job import main

main()
