"""Exact resume beyond Lightning's state: random streams, stage identity, logs that continue; not checkpoint files."""
