"""``python -m pipeline.download``: the align-download command."""

from pipeline.download.cli import main

main()
