"""float64 tensors from literals, for tests that check GRPO math against hand-derived values."""

from __future__ import annotations

import torch

f64 = torch.float64


def t(values, dtype=f64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)
