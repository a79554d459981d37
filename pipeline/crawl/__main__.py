"""``python -m pipeline.crawl``: the align-crawl command."""

from pipeline.crawl.job import main

main()
