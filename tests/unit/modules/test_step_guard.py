"""StepGuard: a non-finite gradient norm leaves weights and AdamW state exactly as they were."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

from pebr_lit.modules.step_guard import StepGuard, gradient_norm


def trained_adamw() -> tuple[torch.nn.Parameter, torch.optim.AdamW]:
    """A weight after one AdamW step, so that momentum and weight decay would move it even at zero gradient."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.1)
    p.grad = torch.tensor([1.0, 1.0])
    opt.step()
    return p, opt


def test_gradient_norm_is_the_l2_norm_of_all_gradients():
    a, b, c = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])  # c has none
    assert float(gradient_norm([a, b, c])) == 5.0
    assert float(gradient_norm([c])) == 0.0


def test_zeroed_gradients_would_still_move_the_weights():
    # Why the guard drops gradients instead of zeroing them: with g = 0 AdamW still applies
    # w <- w (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps), and m, v from the first step are non-zero.
    p, opt = trained_adamw()
    before = p.detach().clone()
    p.grad = torch.zeros_like(p)
    opt.step()
    assert (p != before).all()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_step_changes_nothing_and_is_counted(bad):
    p, opt = trained_adamw()
    weights, state = p.detach().clone(), copy.deepcopy(opt.state_dict())
    guard = StepGuard()
    p.grad = torch.tensor([bad, 0.5])
    with pytest.warns(UserWarning, match=r"Probe: gradient norm is (nan|inf), skipping"):
        norm = guard.check(opt, "Probe")
    assert not math.isfinite(float(norm)) and p.grad is None and guard.skipped == 1
    opt.step()
    assert torch.equal(p, weights)
    after = opt.state_dict()["state"][0]
    assert all(torch.equal(after[k], v) for k, v in state["state"][0].items())  # step, exp_avg, exp_avg_sq

    p.grad = torch.tensor([bad, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning comes once per run
        guard.check(opt, "Probe")
    assert guard.skipped == 2


def test_a_finite_step_is_left_alone():
    p, opt = trained_adamw()
    p.grad = torch.tensor([3.0, 4.0])
    guard = StepGuard()
    assert float(guard.check(opt, "Probe")) == 5.0 and p.grad is not None and guard.skipped == 0
