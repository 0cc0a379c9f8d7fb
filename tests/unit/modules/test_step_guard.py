"""StepGuard: a non-finite loss, gradient norm or updated weight changes no weight or AdamW state; N in a row stop."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

from pebr_lit.modules.step_guard import StepGuard, TrainingStopped, gradient_norm


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


def test_a_non_finite_loss_skips_the_step_even_with_finite_gradients():
    p, opt = trained_adamw()
    p.grad = torch.tensor([0.1, 0.1])
    guard = StepGuard()
    with pytest.warns(UserWarning, match=r"Probe: loss is not finite \(gradient norm 0\.14.*\), skipping"):
        guard.check(opt, "Probe", loss_finite=False)
    assert p.grad is None and guard.skipped == 1 and guard.in_a_row == 1


@pytest.mark.parametrize("first_step", [False, True])
def test_non_finite_updated_weights_are_put_back_with_the_adamw_state(first_step):
    if first_step:  # no optimizer state before the step: the state the step creates goes too
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.1)
    else:
        p, opt = trained_adamw()
    weights, state = p.detach().clone(), copy.deepcopy(opt.state_dict()["state"])
    guard = StepGuard()
    p.grad = torch.tensor([1.0, 1.0])
    assert math.isfinite(float(guard.check(opt, "Probe")))
    guard.before_update(opt)
    opt.step()
    with torch.no_grad():
        p[0] = math.inf  # an update that overflowed
    with pytest.warns(UserWarning, match=r"updated weights are not finite \(weight norm inf\); weights and optimizer"):
        assert guard.after_update(opt, "Probe") is False
    assert torch.equal(p, weights) and guard.skipped == 1
    after = opt.state_dict()["state"]
    assert after.keys() == state.keys() and all(torch.equal(after[i][k], v) for i in state for k, v in state[i].items())


def test_without_restore_non_finite_weights_stop_the_run_before_a_save():
    p, opt = trained_adamw()
    guard = StepGuard(restore_weights=False)
    p.grad = torch.tensor([1.0, 1.0])
    guard.check(opt, "Probe")
    guard.before_update(opt)
    opt.step()
    with torch.no_grad():
        p[1] = math.nan
    with pytest.raises(TrainingStopped, match=r"^Probe: the updated weights are not finite .*restore_weights is false"):
        guard.after_update(opt, "Probe")


def test_n_skipped_steps_in_a_row_stop_the_run_naming_the_first_cause():
    p, opt = trained_adamw()
    guard = StepGuard(max_skipped_in_a_row=2)
    p.grad = torch.tensor([math.nan, 0.0])
    with pytest.warns(UserWarning):
        guard.check(opt, "Probe")
    p.grad = torch.tensor([1.0, 1.0])  # a good step ends the run of skips
    guard.check(opt, "Probe")
    guard.before_update(opt)
    opt.step()
    assert guard.after_update(opt, "Probe") and guard.in_a_row == 0
    p.grad = torch.tensor([math.inf, 0.0])
    guard.check(opt, "Probe")
    p.grad = torch.tensor([math.nan, 0.0])
    stop = r"^Probe: 2 optimizer steps in a row skipped .*the first one: gradient norm is inf"
    with pytest.raises(TrainingStopped, match=stop):
        guard.check(opt, "Probe", loss_finite=False)
    assert guard.skipped == 3


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match=r"^StepGuard\.max_skipped_in_a_row=-1: must be an int >= 0"):
        StepGuard(max_skipped_in_a_row=-1)


_FSDP2_RESTORE = """
import copy, math, os, sys, warnings
import torch, torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from pebr_lit.modules.step_guard import StepGuard

os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
dist.init_process_group("gloo", rank=0, world_size=1)
model = torch.nn.Linear(4, 2)
fully_shard(model, mesh=init_device_mesh("cpu", (1,)))
opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
whole = lambda t: t.full_tensor() if hasattr(t, "full_tensor") else t
model(torch.ones(1, 4)).sum().backward()
opt.step()
weights = [whole(p.detach()).clone() for p in model.parameters()]
state = [{k: whole(v).clone() for k, v in s.items()} for s in opt.state.values()]
model(torch.ones(1, 4)).sum().backward()
guard = StepGuard()
guard.check(opt, "P")
guard.before_update(opt)
opt.step()
with torch.no_grad():
    next(model.parameters()).to_local().view(-1)[0] = math.inf
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    assert guard.after_update(opt, "P") is False
assert type(next(model.parameters())).__name__ == "DTensor"
assert all(torch.equal(whole(p.detach()), w) for p, w in zip(model.parameters(), weights))
assert all(torch.equal(whole(v), s[k]) for s, now in zip(state, opt.state.values()) for k, v in now.items())
dist.destroy_process_group()
print("restored")
"""


def test_fsdp2_sharded_weights_and_state_are_restored_too(tmp_path):
    # FSDP2 parameters and AdamW state are DTensors: the snapshot and the restore work on their local shards.
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    root = str(__import__("pathlib").Path(__file__).resolve().parents[3])  # the checkout under test
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", _FSDP2_RESTORE, port], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "restored" in done.stdout, done.stderr[-2000:]
