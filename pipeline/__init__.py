"""Beam jobs of the recipe: crawl, download, filter, and the I/O and stats they share."""
