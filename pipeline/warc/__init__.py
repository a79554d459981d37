"""WARC/ARC reading shared by the jobs that read archives (align-crawl's pages, align-download's
images): a job never imports another job, so what both need lives here."""
