"""``python -m pipeline.crawl``: the align-crawl command."""

from pipeline.crawl.cli import main

main()
