"""GRPO advantages: group / batch normalisation and zero-variance groups, against hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.grpo.advantages import AdvantageNormalizer, BatchStd, GroupMeanOnly, GroupMeanStd, zero_variance_groups
from tests.helpers.tensors import t


def test_group_mean_std_uses_the_unbiased_group_std() -> None:
    # Group [1,0,0,0]: mean 0.25, centred [.75,-.25,-.25,-.25], var = (.5625 + 3*.0625)/3 = .25 -> std .5
    #   -> A = [1.5, -.5, -.5, -.5].
    # Group [1,1,0,0]: mean .5, centred [±.5], var = 1/3 -> std .57735027 -> A = ±.8660254.
    adv = GroupMeanStd(eps=1e-12)(t([1, 0, 0, 0, 1, 1, 0, 0]), group_size=4)
    h = 0.5 / math.sqrt(1 / 3)
    assert adv.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5, h, h, -h, -h], rel=1e-9)


def test_eps_is_added_to_the_std() -> None:
    # [1, 0]: centred ±.5, std = sqrt(.5) = .70710678; with eps .1: .5 / .80710678 = .61949672.
    adv = GroupMeanStd(eps=0.1)(t([1, 0]), group_size=2)
    assert adv.tolist() == pytest.approx([0.61949672, -0.61949672], rel=1e-7)


def test_batch_std_divides_every_group_by_one_std() -> None:
    # All rewards [1,0,.5,.5]: mean .5, squared deviations .25+.25+0+0 = .5, unbiased var .5/3 -> std .40824829.
    # Group 1 centred [.5,-.5] -> ±1.22474487; group 2 has zero variance -> exactly 0.
    adv = BatchStd(eps=1e-12)(t([1, 0, 0.5, 0.5]), group_size=2)
    assert adv[:2].tolist() == pytest.approx([1.22474487, -1.22474487], rel=1e-7)
    assert adv[2:].tolist() == [0.0, 0.0]


def test_group_mean_only_subtracts_the_group_mean() -> None:
    # [1,0,0,0] - .25 = [.75,-.25,-.25,-.25]; [2,4] - 3 = [-1, 1].
    adv = GroupMeanOnly()(t([1, 0, 0, 0, 2, 4, 2, 4]), group_size=4)
    assert adv.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, -1, 1, -1, 1])


@pytest.mark.parametrize("normalizer", [GroupMeanStd(), BatchStd(), GroupMeanOnly()])
def test_zero_variance_groups_get_exactly_zero(normalizer: AdvantageNormalizer) -> None:
    # In float32 the mean of eight 0.1s is 0.1 + 7.45e-9, so r - mean is -7.45e-9, not 0; divided by
    # std + eps = 0 + 1e-6 that would be A = -0.00745 for a group with no signal. It must be exactly 0.
    rewards = torch.tensor([0.1] * 8 + [1.0, 0.0] * 4, dtype=torch.float32)
    adv = normalizer(rewards, group_size=8)
    assert adv[:8].tolist() == [0.0] * 8
    assert torch.isfinite(adv).all() and adv[8:].abs().sum() > 0
    # A whole batch of equal rewards: every std is 0 -> all zero, no NaN from 0/0.
    assert normalizer(torch.full((8,), 0.7), group_size=4).tolist() == [0.0] * 8


@pytest.mark.parametrize("normalizer", [GroupMeanStd(), BatchStd(), GroupMeanOnly()])
def test_group_size_one_gives_zero_advantage(normalizer: AdvantageNormalizer) -> None:
    # One response per prompt: no baseline and an undefined std -> no signal, not NaN.
    assert normalizer(t([0.3, 5.0, -1.0]), group_size=1).tolist() == [0.0, 0.0, 0.0]


def test_a_near_constant_group_stays_finite() -> None:
    # [0, 1e-7]: centred ±5e-8, std 7.0710678e-8; with eps 1e-6 A = 5e-8 / 1.0707107e-6 = ±.04669796.
    adv = GroupMeanStd(eps=1e-6)(t([0.0, 1e-7]), group_size=2)
    assert adv.tolist() == pytest.approx([-0.04669796, 0.04669796], rel=1e-6)


def test_zero_variance_groups_helper() -> None:
    assert zero_variance_groups(t([1, 1, 0, 1, 2, 2]), 2).tolist() == [True, False, True]
    assert zero_variance_groups(t([3.0, 4.0]), 1).tolist() == [True, True]


def test_advantages_do_not_carry_gradient_and_keep_float_dtype() -> None:
    rewards = torch.tensor([1.0, 0.0], requires_grad=True)
    adv = GroupMeanStd()(rewards, 2)
    assert not adv.requires_grad and adv.dtype == torch.float32
    assert GroupMeanOnly()(torch.tensor([1, 0]), 2).tolist() == [0.5, -0.5]  # int rewards -> float


@pytest.mark.parametrize(
    ("rewards", "group_size", "message"),
    [
        (t([1, 0, 1]), 2, "not a multiple of group_size=2"),
        (t([[1, 0]]), 2, "must be 1-D"),
        (t([1, float("nan")]), 2, r"rewards\[1\] is nan"),
        (t([1, 0]), 0, "group_size must be an int >= 1"),
    ],
)
def test_bad_rewards_are_named(rewards: torch.Tensor, group_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GroupMeanStd()(rewards, group_size)


@settings(max_examples=150, deadline=None)
@given(
    group_size=st.integers(1, 8),
    data=st.data(),
    normalizer=st.sampled_from([GroupMeanStd(), BatchStd(), GroupMeanOnly()]),
)
def test_advantages_are_finite_and_sum_to_zero_per_group(group_size, data, normalizer) -> None:
    num_groups = data.draw(st.integers(1, 5))
    values = data.draw(
        st.lists(
            st.sampled_from([0.0, 0.25, 1.0]) | st.floats(-10, 10),
            min_size=num_groups * group_size,
            max_size=num_groups * group_size,
        )
    )
    rewards = t(values)
    adv = normalizer(rewards, group_size).view(num_groups, group_size)
    assert torch.isfinite(adv).all()
    assert adv.sum(dim=-1).abs().max() <= 1e-6 * max(1.0, adv.abs().max().item())
    flat = zero_variance_groups(rewards, group_size)
    assert (adv[flat] == 0).all()
    if isinstance(normalizer, GroupMeanStd):
        # |z| is largest when one reward differs from G-1 equal ones: (G-1)/G over sqrt(1/G) = (G-1)/sqrt(G).
        assert adv.abs().max() <= (group_size - 1) / math.sqrt(group_size) + 1e-9
