"""Records and batches: schema, loading, collate, tiers, sampling shards, DataModules; no model or scoring."""
