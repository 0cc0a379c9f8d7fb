"""GRPO as pure tensor math: advantages, KL, aggregation, losses, rounds, online filter; no model, I/O or logging."""
