"""The command-line dialect every align-* command shares: flags, configs, errors, the progress
line, the extras check. The bottom of the import graph: it imports nothing of the project."""
