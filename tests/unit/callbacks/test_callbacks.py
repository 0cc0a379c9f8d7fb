"""Pure parts of the GRPO callbacks: KL coefficient updates and the length penalty values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from callbacks.kl_control import KLController
from callbacks.length_penalty import LengthPenalty


def test_adaptive_kl_update_by_hand():
    # kl = 0.02, target 0.01: error = 0.02/0.01 - 1 = 1.0, clipped to 0.2; horizon 10 -> coef * (1 + 0.02).
    assert KLController.next_coef(0.01, 0.02, 0.01, 10) == pytest.approx(0.0102)
    # kl = 0.009: error = -0.1 (inside the clip) -> coef * (1 - 0.01).
    assert KLController.next_coef(0.01, 0.009, 0.01, 10) == pytest.approx(0.0099)
    # kl = 0: error = -1 clipped to -0.2 -> coef * 0.98.
    assert KLController.next_coef(0.5, 0.0, 0.01, 10) == pytest.approx(0.49)


def _module(kl: float | None):
    return SimpleNamespace(loss=SimpleNamespace(kl_coef=123.0), last_stats={} if kl is None else {"kl": kl})


def test_fixed_and_adaptive_controllers_drive_the_module_hook():
    fixed = KLController(coef=0.05)
    module = _module(kl=1.0)
    fixed.on_fit_start(None, module)
    fixed.on_train_batch_end(None, module, None, None, 0)
    assert module.loss.kl_coef == 0.05

    adaptive = KLController(coef=0.01, target=0.01, horizon=1, max_coef=0.0115)
    module = _module(kl=1.0)
    adaptive.on_fit_start(None, module)
    adaptive.on_train_batch_end(None, module, None, None, 0)  # 0.01 * 1.2 = 0.012, capped at 0.0115
    assert module.loss.kl_coef == pytest.approx(0.0115)
    state = adaptive.state_dict()
    restored = KLController(coef=0.01, target=0.01)
    restored.load_state_dict(state)
    assert restored.coef == pytest.approx(0.0115)


@pytest.mark.parametrize("kwargs", [{"coef": -1}, {"target": 0.0}, {"horizon": 0}, {"coef": 0.0, "target": 0.1}])
def test_kl_controller_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        KLController(**kwargs)


def test_length_penalty_values_by_hand():
    penalty = LengthPenalty(weight=0.1, target_tokens=100)
    # 50 and 100 tokens are within target -> 1; 200 -> 100/200 = 0.5; 400 -> 0.25.
    values = penalty.reward_values(["a"] * 4, torch.tensor([50, 100, 200, 400]))
    torch.testing.assert_close(values, torch.tensor([1.0, 1.0, 0.5, 0.25]))
    with pytest.raises(ValueError):
        LengthPenalty(target_tokens=0)
