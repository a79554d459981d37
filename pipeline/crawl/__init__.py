"""align-crawl: WARC/WAT/ARC files or page URLs -> deduplicated (image URL, alt-text) pairs."""
