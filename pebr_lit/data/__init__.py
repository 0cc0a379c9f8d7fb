"""Records, batches, collate, tiers, sampling shards, DataModules and their module contracts; no model or scoring."""
