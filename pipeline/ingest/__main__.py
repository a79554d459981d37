"""``python -m pipeline.ingest``: the align-ingest command."""

from pipeline.ingest.cli import main

main()
