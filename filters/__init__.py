"""ALIGN's filtering rules as plain Python predicates (no Beam, no TensorFlow)."""
