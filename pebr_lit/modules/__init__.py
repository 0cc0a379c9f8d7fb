"""LightningModules that own the loops: SFT, the shared GRPO loop and its two stages, evaluation; policy injected."""
