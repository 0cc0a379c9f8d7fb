"""Pure rewards: per-response components, rule sets (pebr-lit's, the authors'), stage sums, graders; no model or I/O."""
