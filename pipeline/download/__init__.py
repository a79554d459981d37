"""align-download: pair shards -> image shards (resized images, or a named failure per pair)."""
