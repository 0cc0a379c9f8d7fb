"""Pure rewards: per-response components, stage combinations and the answer graders; no model or I/O."""
