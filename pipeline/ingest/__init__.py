"""align-ingest: a url+caption list (CSV, TSV, JSON, Parquet) -> pair shards for align-download."""
