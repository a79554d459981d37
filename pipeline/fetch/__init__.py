"""The safe, polite HTTP fetcher every job that fetches shares (crawl's pages, download)."""
