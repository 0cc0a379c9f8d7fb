"""RandomStream: the sampling random state of a training stage, kept apart and saved in its checkpoints.

Everything random in a GRPO training step (HF ``generate``'s sampling, dropout) draws from the process's
generators: torch (CPU, and CUDA on the module's device), Python ``random`` and numpy. A ``RandomStream``
holds its own copy of those states and swaps it in only for the block it guards (``with stream.active():``),
so draws outside the training steps (a DataLoader iterator's base seed, validation, a callback) neither
move it nor depend on it. Its state after step k is what a checkpoint after step k saves, and a run resumed
from that checkpoint draws exactly what the uninterrupted run drew from step k+1 on.

The saved state holds only tensors, ints, floats, strings and tuples, so it loads with
``torch.load(..., weights_only=True)``.

Left out on purpose: when states are saved and loaded (``modules.grpo``'s checkpoint hooks), gathering the
states of several processes (``gather_states``, used there), and generators owned by a rollout server
(an SGLang server samples with its own state, which no checkpoint reaches).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def capture(device: torch.device | None = None) -> dict[str, Any]:
    """The process's random states now: torch CPU, CUDA on ``device`` (when it is a CUDA device), Python, numpy."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),  # [624]
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Set the process's random states to ``state`` (``capture``'s); CUDA only on a CUDA ``device`` saved as one."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    saved = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": saved["bit_generator"],
            "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
            "has_gauss": saved["has_gauss"],
            "gauss": saved["gauss"],
        }
    )
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class RandomStream:
    """A random state of its own, swapped in for the blocks it guards; see the module docstring.

    Until its first block (or a ``load_state_dict``) it has no state: the first block starts from the
    process's state as it is then (after ``seed_everything`` and any per-rank offset), so an uninterrupted
    run samples what it sampled before streams existed, until something outside the steps draws.
    """

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None

    @contextlib.contextmanager
    def active(self, device: torch.device | None = None) -> Iterator[None]:
        """Draw from this stream inside the block; the process's own states are back afterwards."""
        outer = capture(device)
        if self._state is not None:
            restore(self._state, device)
        try:
            yield
        finally:
            self._state = capture(device)
            restore(outer, device)

    def state_dict(self, device: torch.device | None = None) -> dict[str, Any]:
        """The stream's state (the process's when no block has run yet), for a checkpoint."""
        return self._state if self._state is not None else capture(device)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's state: the next block draws what the saved run drew next."""
        for key in ("torch", "python", "numpy"):
            if key not in state:
                raise ValueError(f"sampling random state without {key!r}: not written by RandomStream.state_dict.")
        self._state = state


def gather_states(state: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every process's ``state``, in rank order (all processes must call it); ``[state]`` on one process."""
    if world_size == 1:
        return [state]
    gathered: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(gathered, state)
    return gathered
