"""RandomStream: a step's draws do not depend on draws outside the steps, and its state survives a checkpoint."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from pebr_lit.resume.rng import RandomStream


def _draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), float(np.random.rand())


def test_draws_outside_the_stream_neither_move_it_nor_are_moved_by_it():
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    quiet, busy = RandomStream(), RandomStream()
    with quiet.active():
        first = _draws()
    with quiet.active():
        second = _draws()

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    with busy.active():
        assert _draws() == first
    outside = _draws()  # e.g. a DataLoader's base seed or a validation sample, between two steps
    with busy.active():
        assert _draws() == second
    # The process's own sequence went on as if the stream's blocks had not drawn.
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    assert _draws() == outside


def test_state_reloads_with_weights_only_and_continues_the_sequence():
    torch.manual_seed(1)
    stream = RandomStream()
    with stream.active():
        _draws()
    buffer = io.BytesIO()
    torch.save({"pebr_rng": stream.state_dict()}, buffer)
    with stream.active():
        expected = _draws()

    buffer.seek(0)
    resumed = RandomStream()
    resumed.load_state_dict(torch.load(buffer, weights_only=True)["pebr_rng"])
    torch.manual_seed(99), random.seed(99), np.random.seed(99)  # a fresh process: other states
    with resumed.active():
        assert _draws() == expected


def test_a_state_without_its_parts_is_refused():
    with pytest.raises(ValueError, match="without 'numpy'"):
        RandomStream().load_state_dict({"torch": torch.get_rng_state(), "python": random.getstate()})
