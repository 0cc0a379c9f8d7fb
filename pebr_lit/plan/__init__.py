"""Memory planner: a resolved config + model shapes -> per-GPU peak estimate by part and phase (no model built)."""
