"""``python -m pipeline.ingest``: the align-ingest command."""

from pipeline.ingest.job import main

main()
