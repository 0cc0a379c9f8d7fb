"""KL estimators k1, k2, k3: hand values, unbiasedness, verl's clamp, low-precision inputs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.grpo.kl import K1, K2, K3
from tests.helpers.tensors import t


def test_kl_estimators_match_hand_values() -> None:
    # d = log pi - log ref = [.5, -1, 0].
    logp, ref = t([-1.0, -2.0, -0.5]), t([-1.5, -1.0, -0.5])
    assert K1()(logp, ref).tolist() == pytest.approx([0.5, -1.0, 0.0])
    assert K2()(logp, ref).tolist() == pytest.approx([0.125, 0.5, 0.0])  # d^2 / 2
    # exp(-d) + d - 1: exp(-.5) - .5 = .10653066; exp(1) - 2 = .71828183; 0.
    assert K3()(logp, ref).tolist() == pytest.approx([0.10653066, 0.71828183, 0.0], rel=1e-7)


def test_k1_and_k3_average_to_the_exact_kl_under_the_policy() -> None:
    # pi = [.5, .5], ref = [.25, .75]: KL(pi || ref) = .5 ln 2 + .5 ln(2/3) = .5 ln(4/3) = .14384104.
    # k3 per token: ref/pi - 1 - ln(ref/pi) = [.5 - 1 + ln 2, 1.5 - 1 + ln(2/3)] = [.19314718, .09453489].
    logp, ref = t([0.5, 0.5]).log(), t([0.25, 0.75]).log()
    kl = 0.5 * math.log(4 / 3)
    assert K3()(logp, ref).tolist() == pytest.approx([0.19314718, 0.09453489], rel=1e-7)
    assert K1()(logp, ref).mean().item() == pytest.approx(kl, rel=1e-12)
    assert K3()(logp, ref).mean().item() == pytest.approx(kl, rel=1e-12)
    assert K2()(logp, ref).mean().item() != pytest.approx(kl, rel=1e-3)  # k2 is biased


def test_k3_is_nonnegative_and_close_to_k2_for_small_differences() -> None:
    # Pointwise k3 = d^2/2 - d^3/6 + ..., so it tracks k2 (not k1, which is linear in d) near d = 0;
    # the two agree with k1 only in expectation (previous test). Slack 1e-23: float64 rounding of
    # expm1(x) - x near |x| = 1e-8, where k3 itself is 5e-17.
    d = t([1e-8, -1e-6, 1e-4, -1e-3, 1e-2])
    k2, k3 = K2()(d, torch.zeros_like(d)), K3()(d, torch.zeros_like(d))
    assert (k3 >= 0).all()
    assert ((k3 - k2).abs() <= d.abs() ** 3 / 6 * 1.01 + 1e-23).all()


def test_k3_is_clamped_like_verl() -> None:
    # d = -30: log(ref/pi) = 30 -> 20 -> e^20 - 21 -> capped at 10. d = +30: -30 -> -20 -> e^-20 + 19 -> 10.
    logp = t([-30.0, 0.0, -3.0]).requires_grad_()
    ref = t([0.0, -30.0, -3.0])
    k3 = K3()(logp, ref)
    assert k3.tolist() == [10.0, 10.0, 0.0]
    k3.sum().backward()
    assert logp.grad.tolist() == [0.0, 0.0, 0.0]  # clamped tokens pass no gradient; d = 0 has zero slope
    assert K3(max_value=100.0)(t([0.0]), t([-30.0])).item() == pytest.approx(math.exp(-20) + 19)


def test_kl_estimators_upcast_low_precision() -> None:
    logp, ref = torch.tensor([-1.0], dtype=torch.bfloat16), torch.tensor([-1.5], dtype=torch.bfloat16)
    for estimator in (K1(), K2(), K3()):
        assert estimator(logp, ref).dtype == torch.float32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-60, 0), st.floats(-60, 0)), min_size=1, max_size=16))
def test_k2_and_k3_are_nonnegative_and_finite(pairs) -> None:
    logp, ref = t([p for p, _ in pairs]), t([q for _, q in pairs])
    for estimator in (K2(), K3()):
        values = estimator(logp, ref)
        assert torch.isfinite(values).all() and (values >= 0).all()
    assert (K3()(logp, ref) <= 10.0).all()
