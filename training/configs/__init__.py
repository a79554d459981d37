"""Shipped training configs (YAML): align.yaml (the paper) and small.yaml (CPU runs)."""
