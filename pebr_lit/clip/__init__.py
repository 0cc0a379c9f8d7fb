"""CLIP-family similarity scorers, their loading, contrastive training; the reward on top is in rewards/."""
