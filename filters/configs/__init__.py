"""Filter configs shipped as package data (small.yaml for small runs)."""
