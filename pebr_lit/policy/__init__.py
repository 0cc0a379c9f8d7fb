"""The policy model: load, LoRA/QLoRA, generate, log-probs, KV cache, checkpoints, export, FSDP2; no training loop."""
