"""WarmupConstantDecay and WarmupCosine: learning-rate factors derived by hand for warm-up, plateau and decay."""

from __future__ import annotations

import math

import pytest
import torch

from pebr_lit.modules.schedules import WarmupConstantDecay, WarmupCosine, build_optimization


def optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def schedule(**kwargs) -> WarmupConstantDecay:
    return WarmupConstantDecay(optimizer(), **kwargs)


def test_warmup_ramps_linearly_to_the_base_rate() -> None:
    # warmup_steps=4: factor(s) = (s + 1) / 4 -> 1/4, 2/4, 3/4, 4/4; the first step is not lr 0.
    sched = schedule(warmup_steps=4, total_steps=None)
    assert [sched.factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_no_warmup_starts_at_the_base_rate() -> None:
    assert schedule(warmup_steps=0, total_steps=100).factor(0) == 1.0


def test_plateau_then_cosine_decay_to_min_ratio() -> None:
    # total 100, decay_fraction 0.2 -> 20 decay steps starting at step 80;
    # factor = 0.1 + 0.9 * 0.5 * (1 + cos(pi * (s - 80) / 20)).
    sched = schedule(warmup_steps=10, decay_fraction=0.2, min_ratio=0.1, total_steps=100)
    assert sched.factor(9) == 1.0  # last warm-up step: 10/10
    assert sched.factor(10) == 1.0
    assert sched.factor(79) == 1.0
    assert sched.factor(80) == pytest.approx(1.0)  # progress 0: cos 0 = 1
    assert sched.factor(90) == pytest.approx(0.55)  # progress 1/2: cos(pi/2) = 0 -> 0.1 + 0.45
    # progress 3/4: cos(3pi/4) = -sqrt(2)/2 -> 0.1 + 0.45 * (1 - 0.70710678) = 0.23180195
    assert sched.factor(95) == pytest.approx(0.23180195)
    # The last optimizer step (99) is 1/20 short of the end: 0.1 + 0.45 * (1 + cos(0.95 pi)).
    assert sched.factor(99) == pytest.approx(0.1 + 0.45 * (1 + math.cos(0.95 * math.pi)))
    assert sched.factor(100) == pytest.approx(0.1)  # the end of the run
    assert sched.factor(250) == pytest.approx(0.1)  # past the end it stays at the floor


def test_decay_is_monotone_and_stays_in_range() -> None:
    sched = schedule(warmup_steps=5, decay_fraction=0.5, min_ratio=0.2, total_steps=40)
    factors = [sched.factor(s) for s in range(5, 60)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert all(0.2 - 1e-12 <= f <= 1.0 for f in factors)


def test_a_decay_shorter_than_one_step_still_ends_at_min_ratio() -> None:
    # 10 * 0.01 rounds to 0 steps; at least one decay step is kept: it starts at 9, ends at 10.
    sched = schedule(decay_fraction=0.01, min_ratio=0.3, total_steps=10)
    assert sched.factor(9) == pytest.approx(1.0)
    assert sched.factor(10) == pytest.approx(0.3)


def test_zero_decay_fraction_keeps_the_base_rate() -> None:
    sched = schedule(warmup_steps=2, decay_fraction=0.0, total_steps=10)
    assert [sched.factor(s) for s in (2, 9, 10, 50)] == [1.0, 1.0, 1.0, 1.0]


def test_unknown_total_steps_is_constant_after_warmup() -> None:
    sched = schedule(warmup_steps=3, decay_fraction=0.5, min_ratio=0.0, total_steps=None)
    assert [sched.factor(s) for s in (3, 100, 10**6)] == [1.0, 1.0, 1.0]
    # The SFT module fills total_steps in after construction; the decay then applies:
    # 50 decay steps from 50, progress 1/2 at 75 -> 0.5 * (1 + 0) = 0.5.
    sched.total_steps = 100
    assert sched.factor(75) == pytest.approx(0.5)
    assert sched.factor(100) == pytest.approx(0.0)


def test_the_optimizer_sees_base_lr_times_factor() -> None:
    # base lr 2.0, warm-up 4: 0.5 before the first step, then 1.0, 1.5, 2.0, 2.0.
    opt = optimizer(lr=2.0)
    sched = WarmupConstantDecay(opt, warmup_steps=4, total_steps=None)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        opt.step()
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0])


def test_state_dict_restores_the_run_length() -> None:
    # Resuming must not fall back to "constant": total_steps set after construction is saved.
    opt = optimizer()
    sched = WarmupConstantDecay(opt, total_steps=None, decay_fraction=0.2, min_ratio=0.0)
    sched.total_steps = 100
    for _ in range(90):
        opt.step()
        sched.step()
    restored = WarmupConstantDecay(optimizer(), total_steps=None, decay_fraction=0.2, min_ratio=0.0)
    restored.load_state_dict(sched.state_dict())
    assert restored.total_steps == 100
    assert restored.last_epoch == 90
    assert restored.get_last_lr() == pytest.approx([0.5])  # 20 decay steps from 80: progress 1/2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"decay_fraction": -0.1}, "decay_fraction"),
        ({"decay_fraction": 1.5}, "decay_fraction"),
        ({"min_ratio": -0.01}, "min_ratio"),
        ({"min_ratio": 1.01}, "min_ratio"),
    ],
)
def test_invalid_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        schedule(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"decay_fraction": 0.0}, {"decay_fraction": 1.0}, {"min_ratio": 0.0}, {"min_ratio": 1.0}]
)
def test_boundary_settings_are_accepted(kwargs: dict) -> None:
    assert schedule(total_steps=10, **kwargs).factor(0) == 1.0


# --- WarmupCosine (the authors' SFT schedule) ---------------------------------------------------------


def test_warmup_cosine_follows_the_hugging_face_curve() -> None:
    # T = 20, warmup_fraction 0.1 -> W = ceil(2.0) = 2: factors 0/2, 1/2, then
    # 0.5 * (1 + cos(pi * (s - 2) / 18)): s=2 -> 1, s=11 -> cos(pi/2) = 0 -> 0.5, s=20 -> cos(pi) = -1 -> 0.
    sched = WarmupCosine(optimizer(), warmup_fraction=0.1, total_steps=20)
    assert sched.factor(0) == 0.0
    assert sched.factor(1) == 0.5
    assert sched.factor(2) == pytest.approx(1.0)
    assert sched.factor(11) == pytest.approx(0.5)
    assert sched.factor(20) == pytest.approx(0.0, abs=1e-12)


def test_warmup_cosine_min_ratio_and_no_warmup() -> None:
    # W = 0: s=5 of 10 -> 0.2 + 0.8 * 0.5 * (1 + cos(pi/2)) = 0.6
    sched = WarmupCosine(optimizer(), warmup_fraction=0.0, min_ratio=0.2, total_steps=10)
    assert sched.factor(0) == 1.0
    assert sched.factor(5) == pytest.approx(0.6)
    assert sched.factor(10) == pytest.approx(0.2)


def test_warmup_cosine_sized_by_the_run_starts_at_zero() -> None:
    # Built before the run's length is known (total_steps=None, as from YAML): the first step's rate is
    # already the warm-up's 0, and build_optimization sizes it to the trainer's step count.
    params = [torch.nn.Parameter(torch.zeros(1))]
    out = build_optimization(
        params, lambda p: torch.optim.SGD(p, lr=1.0), lambda o: WarmupCosine(o, warmup_fraction=0.5), 4.0
    )
    sched = out["lr_scheduler"]["scheduler"]
    assert sched.total_steps == 4
    assert out["optimizer"].param_groups[0]["lr"] == 0.0
    sched.step()  # step 1 of W = 2: 1/2
    assert out["optimizer"].param_groups[0]["lr"] == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [{"warmup_fraction": 1.0}, {"warmup_fraction": -0.1}, {"min_ratio": 1.5}])
def test_warmup_cosine_refuses_bad_fractions(kwargs) -> None:
    with pytest.raises(ValueError, match=r"WarmupCosine\.(warmup_fraction|min_ratio)="):
        WarmupCosine(optimizer(), **kwargs)
