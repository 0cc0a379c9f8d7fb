"""Checkpoint files: safe loading, atomic writing, choosing the file ``last`` means, and the run-directory lock."""
