"""align-filter: ALIGN's rules over pairs or downloaded images -> kept shards, rejects, stats."""
