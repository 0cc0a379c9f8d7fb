"""GRPO math: advantages, KL estimators, clipping, aggregation and the composed loss, against hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.grpo.advantages import (
    AdvantageNormalizer,
    BatchStd,
    GroupMeanOnly,
    GroupMeanStd,
    zero_variance_groups,
)
from pebr_lit.grpo.aggregation import SequenceMean, TokenMean
from pebr_lit.grpo.kl import K1, K2, K3
from pebr_lit.grpo.losses import ClippedSurrogate, GRPOLoss

f64 = torch.float64


def t(values, dtype=f64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


# --- advantages -------------------------------------------------------------------------------


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


# --- KL estimators ----------------------------------------------------------------------------


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


# --- clipped surrogate ------------------------------------------------------------------------


def surrogate(ratio: float, advantage: float, **kwargs):
    """One token with the given ratio: loss, d loss / d logprob, and the diagnostics."""
    logp = t([[math.log(ratio)]]).requires_grad_()
    loss, stats = ClippedSurrogate(**kwargs)(logp, t([[0.0]]), t([advantage]), torch.ones(1, 1, dtype=torch.bool))
    loss.sum().backward()
    flags = {k: bool(v.item()) for k, v in stats.items() if k != "ratio"}
    return loss.item(), logp.grad.item(), flags


@pytest.mark.parametrize(
    ("ratio", "advantage", "loss", "grad", "flagged"),
    [
        # A > 0: loss = max(-A r, -A clip(r, .8, 1.3)); the ceiling 1.3 binds, the floor .8 never does.
        (1.5, 1.0, -1.3, 0.0, {"clip_fraction", "clip_fraction_high"}),  # max(-1.5, -1.3)
        (1.1, 1.0, -1.1, -1.1, set()),  # inside the range: d(-A r)/d log r = -A r
        (0.5, 1.0, -0.5, -0.5, set()),  # max(-.5, -.8) = -.5: unclipped, still pushes r up
        # A < 0: the floor .8 binds, the ceiling does not.
        (0.5, -1.0, 0.8, 0.0, {"clip_fraction", "clip_fraction_low"}),  # max(.5, .8)
        (1.5, -1.0, 1.5, 1.5, set()),  # max(1.5, 1.3) = 1.5 < c = 3: no dual clip
        (0.9, -2.0, 1.8, 1.8, set()),
        (1.0, 0.0, 0.0, 0.0, set()),  # A = 0: nothing to clip
    ],
)
def test_clip_low_and_high(ratio, advantage, loss, grad, flagged) -> None:
    got_loss, got_grad, flags = surrogate(ratio, advantage, eps_low=0.2, eps_high=0.3, dual_clip_c=3.0)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    assert got_grad == pytest.approx(grad, abs=1e-12)
    assert {k for k, v in flags.items() if v} == flagged


def test_dual_clip_caps_only_negative_advantages_beyond_c() -> None:
    # A = -1, r = 4: unclipped max(4, 1.3) = 4; dual-clip caps at -A c = 3 with zero gradient.
    loss, grad, flags = surrogate(4.0, -1.0, dual_clip_c=3.0)
    assert (loss, grad) == (pytest.approx(3.0), 0.0)
    assert {k for k, v in flags.items() if v} == {"dual_clip_fraction"}
    # Without dual-clip the same token costs 4 and keeps its gradient -A r = 4.
    loss, grad, flags = surrogate(4.0, -1.0, dual_clip_c=None)
    assert (loss, grad, flags["dual_clip_fraction"]) == (pytest.approx(4.0), pytest.approx(4.0), False)
    # A = -1, r = 2.9 < c: max(2.9, 1.3) = 2.9 stays.
    assert surrogate(2.9, -1.0, dual_clip_c=3.0)[:2] == (pytest.approx(2.9), pytest.approx(2.9))
    # A = +1, r = 4: max(-4, -1.3) = -1.3 (ordinary high clip); dual-clip never touches A > 0.
    loss, _, flags = surrogate(4.0, 1.0, dual_clip_c=3.0)
    assert loss == pytest.approx(-1.3) and flags["clip_fraction_high"] and not flags["dual_clip_fraction"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps_low": 1.0}, "eps_low"),
        ({"eps_high": -0.1}, "eps_high"),
        ({"dual_clip_c": 1.0}, "dual_clip_c must be > 1"),
        ({"log_ratio_clamp": 0.0}, "log_ratio_clamp"),
    ],
)
def test_surrogate_rejects_bad_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ClippedSurrogate(**kwargs)


# --- aggregation ------------------------------------------------------------------------------


def test_token_mean_and_sequence_mean_on_unequal_lengths() -> None:
    # Row lengths 3 and 1; a third row has no tokens.
    # token-mean: (1 + 2 + 3 + 10) / 4 = 4.   sequence-mean: (mean(1,2,3) = 2, 10) -> (2 + 10) / 2 = 6.
    values = t([[1, 2, 3], [10, 99, 99], [5, 5, 5]])
    mask = t([[1, 1, 1], [1, 0, 0], [0, 0, 0]]).bool()
    assert TokenMean()(values, mask).item() == 4.0
    assert SequenceMean()(values, mask).item() == 6.0
    nothing = torch.zeros_like(mask)
    assert TokenMean()(values, nothing).item() == 0.0 and SequenceMean()(values, nothing).item() == 0.0


@pytest.mark.parametrize("aggregation", [TokenMean(), SequenceMean()])
def test_aggregation_ignores_nan_and_inf_in_padding(aggregation) -> None:
    # values * mask would turn inf * 0 into NaN; the result must equal the clean one: 4 (token) / 6 (sequence).
    mask = t([[1, 1, 1], [1, 0, 0]]).bool()
    clean = t([[1, 2, 3], [10, 0, 0]]).requires_grad_()
    dirty = t([[1, 2, 3], [10, float("nan"), float("inf")]]).requires_grad_()
    a, b = aggregation(clean, mask), aggregation(dirty, mask)
    (a + b).backward()
    assert a.item() == b.item() and torch.equal(clean.grad, dirty.grad)
    assert dirty.grad[1, 1:].tolist() == [0.0, 0.0]


# --- the composed loss ------------------------------------------------------------------------


def batch():
    """Rows of 3 and 1 response tokens; padding holds garbage that must never leak."""
    mask = t([[1, 1, 1], [1, 0, 0]]).bool()
    logp = t([[-1.0, -2.0, -0.5], [-0.7, float("nan"), float("-inf")]])
    return logp, mask


def test_gradient_at_ratio_one_is_minus_advantage_over_token_count() -> None:
    # r = 1 everywhere and ref = pi (k3 = 0, slope 0): loss = sum_i sum_t -A_i / T with T = 4 tokens.
    # Value: (-2 * 3 + 1 * 1) / 4 = -1.25. Gradient: -A_i / 4 -> row 0: -.5 each, row 1: +.25, padding 0.
    logp, mask = batch()
    logp.requires_grad_()
    loss, stats = GRPOLoss()(logp, logp.detach(), logp.detach(), t([2.0, -1.0]), mask)
    loss.backward()
    assert loss.item() == pytest.approx(-1.25)
    assert logp.grad.flatten().tolist() == pytest.approx([-0.5, -0.5, -0.5, 0.25, 0.0, 0.0])
    assert stats["kl"].item() == 0.0 and stats["approx_kl"].item() == 0.0 and stats["ratio_mean"].item() == 1.0


def test_sequence_mean_gradient_weighs_each_response_equally() -> None:
    # -A_i / (len_i * num_responses): row 0: -2 / (3 * 2) = -1/3; row 1: +1 / (1 * 2) = +.5.
    logp, mask = batch()
    logp.requires_grad_()
    grpo = GRPOLoss(kl_coef=0.0, aggregation=SequenceMean())
    loss, _ = grpo(logp, logp.detach(), None, t([2.0, -1.0]), mask)
    loss.backward()
    assert loss.item() == pytest.approx((-2.0 + 1.0) / 2)  # (mean of row 0 = -2, row 1 = +1) / 2
    assert logp.grad.flatten().tolist() == pytest.approx([-1 / 3, -1 / 3, -1 / 3, 0.5, 0.0, 0.0])


def test_kl_term_value_and_gradient() -> None:
    # A = 0, one token with d = .5: k3 = e^-.5 + .5 - 1 = .10653066; loss = .01 * k3 = .0010653066;
    # d k3 / d log pi = 1 - e^-d = .39346934 -> gradient .01 * .39346934.
    logp = t([[-1.0]]).requires_grad_()
    mask = torch.ones(1, 1, dtype=torch.bool)
    loss, stats = GRPOLoss(kl_coef=0.01)(logp, logp.detach(), t([[-1.5]]), t([0.0]), mask)
    loss.backward()
    assert loss.item() == pytest.approx(0.0010653066, rel=1e-7)
    assert stats["kl"].item() == pytest.approx(0.10653066, rel=1e-7)
    assert logp.grad.item() == pytest.approx(0.0039346934, rel=1e-7)


def test_kl_coef_is_a_runtime_hook() -> None:
    logp, ref, mask = t([[-1.0]]), t([[-1.5]]), torch.ones(1, 1, dtype=torch.bool)
    grpo = GRPOLoss(kl_coef=0.0)
    base, stats = grpo(logp, logp, ref, t([1.0]), mask)
    grpo.kl_coef = 0.5  # what a KL-control callback does
    raised, _ = grpo(logp, logp, ref, t([1.0]), mask)
    assert (raised - base).item() == pytest.approx(0.5 * stats["kl"].item())


def test_entropy_bonus_is_subtracted() -> None:
    # A = 0, no KL: loss = -.1 * token-mean(entropy) = -.1 * (2 + 4) / 2 = -.3.
    logp, mask = t([[-1.0, -1.0]]), torch.ones(1, 2, dtype=torch.bool)
    grpo = GRPOLoss(kl_coef=0.0, entropy_coef=0.1)
    loss, stats = grpo(logp, logp, None, t([0.0]), mask, entropy=t([[2.0, 4.0]]))
    assert loss.item() == pytest.approx(-0.3) and stats["entropy"].item() == pytest.approx(3.0)


def test_diagnostics_by_hand() -> None:
    # Row 0 (A = +1) ratios [1.5, 1]; row 1 (A = -1) ratios [.5, 4]; a padded third token of ratio e^50.
    # Per token: -1.3 (high clip), -1, .8 (low clip), 3 (dual clip) -> policy_loss 1.5 / 4 = .375.
    # ratio mean (1.5 + 1 + .5 + 4) / 4 = 1.75; approx_kl = mean(r - 1 - ln r)
    #   = (.09453489 + 0 + .19314718 + 1.61370564) / 4 = .47534693.
    ratios = t([[1.5, 1.0, math.exp(50)], [0.5, 4.0, 1.0]])
    mask = t([[1, 1, 0], [1, 1, 0]]).bool()
    loss, stats = GRPOLoss(kl_coef=0.0)(ratios.log(), torch.zeros(2, 3, dtype=f64), None, t([1.0, -1.0]), mask)
    expected = {
        "policy_loss": 0.375,
        "clip_fraction": 0.5,
        "clip_fraction_low": 0.25,
        "clip_fraction_high": 0.25,
        "dual_clip_fraction": 0.25,
        "ratio_mean": 1.75,
        "ratio_max": 4.0,
        "ratio_min": 0.5,
        "approx_kl": 0.47534693,
    }
    assert set(stats) == set(expected)  # no "kl" without ref_logprobs, no "entropy" without entropy
    for name, value in expected.items():
        assert stats[name].item() == pytest.approx(value, rel=1e-7), name
        assert stats[name].dim() == 0 and not stats[name].requires_grad
    assert loss.item() == pytest.approx(0.375)


def test_surrogate_gives_finite_placeholders_at_padding() -> None:
    # Padding gets log-ratio 0 (r = 1, loss -A), so even an unmasked sum of the output stays finite.
    logp = t([[-1.0, float("nan"), float("inf")]]).requires_grad_()
    old = t([[-1.0, float("-inf"), 0.0]])
    loss, stats = ClippedSurrogate()(logp, old, t([2.0]), t([[1, 0, 0]]).bool())
    assert loss.tolist() == [[-2.0, -2.0, -2.0]] and stats["ratio"].tolist() == [[1.0, 1.0, 1.0]]
    loss.sum().backward()
    assert logp.grad.tolist() == [[-2.0, 0.0, 0.0]]


def test_ratio_extremes_ignore_padding() -> None:
    # Response ratios [1.5, 2]; the padding's placeholder ratio 1 must not become the minimum.
    ratios, mask = t([[1.5, 2.0, 1.0]]), t([[1, 1, 0]]).bool()
    _, stats = GRPOLoss(kl_coef=0.0)(ratios.log(), torch.zeros(1, 3, dtype=f64), None, t([1.0]), mask)
    assert (stats["ratio_min"].item(), stats["ratio_max"].item()) == pytest.approx((1.5, 2.0))
    assert stats["ratio_mean"].item() == pytest.approx(1.75)


@pytest.mark.parametrize("kl", [K1(), K2(), K3()])
@pytest.mark.parametrize("aggregation", [TokenMean(), SequenceMean()])
def test_garbage_in_padding_never_leaks_into_loss_stats_or_grads(kl, aggregation) -> None:
    mask = t([[1, 1, 0, 0], [1, 0, 0, 0]]).bool()
    clean = t([[-1.0, -2.0, 0.0, 0.0], [-0.5, 0.0, 0.0, 0.0]])
    garbage = torch.where(mask, clean, t([[0, 0, float("nan"), float("inf")], [0, float("-inf"), 1e30, -1e30]]))
    old, ref = clean - 0.1, clean + 0.2
    grpo = GRPOLoss(kl=kl, kl_coef=0.1, aggregation=aggregation, entropy_coef=0.01)
    results = []
    for fill in (clean, garbage):
        logp = fill.clone().requires_grad_()
        dirty = lambda x, fill=fill: torch.where(mask, x, fill)  # noqa: E731 - old/ref/entropy carry the same garbage
        loss, stats = grpo(logp, dirty(old), dirty(ref), t([1.0, -0.5]), mask, entropy=dirty(clean.abs()))
        loss.backward()
        results.append((loss.item(), {k: v.item() for k, v in stats.items()}, logp.grad))
    (loss_a, stats_a, grad_a), (loss_b, stats_b, grad_b) = results
    assert math.isfinite(loss_b) and loss_a == loss_b and stats_a == stats_b
    assert torch.isfinite(grad_b).all() and torch.equal(grad_a, grad_b)
    assert (grad_b[~mask] == 0).all() and (grad_b[mask] != 0).all()


def test_defaults_are_the_authors_settings() -> None:
    grpo = GRPOLoss()
    assert isinstance(grpo.policy_loss, ClippedSurrogate) and isinstance(grpo.kl, K3)
    assert isinstance(grpo.aggregation, TokenMean) and (grpo.kl_coef, grpo.entropy_coef) == (0.01, 0.0)
    p = grpo.policy_loss
    assert (p.eps_low, p.eps_high, p.dual_clip_c) == (0.2, 0.3, 3.0)
    assert GRPOLoss().policy_loss is not p  # a fresh instance each time, never a shared default


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ref_logprobs": None}, "ref_logprobs is None"),
        ({"entropy_coef": 0.1}, "entropy is None"),
        ({"old_logprobs": torch.zeros(2, 2)}, "old_logprobs has shape"),
        ({"mask": torch.ones(2, 2, dtype=torch.bool)}, "mask has shape"),
        ({"advantages": torch.zeros(2, 3)}, "one value per response"),
        ({"logprobs": torch.zeros(6)}, r"must be \[N, L\]"),
    ],
)
def test_loss_names_bad_inputs(kwargs, message) -> None:
    entropy_coef = kwargs.pop("entropy_coef", 0.0)
    args = {
        "logprobs": torch.zeros(2, 3),
        "old_logprobs": torch.zeros(2, 3),
        "ref_logprobs": torch.zeros(2, 3),
        "advantages": torch.zeros(2),
        "mask": torch.ones(2, 3, dtype=torch.bool),
    } | kwargs
    with pytest.raises(ValueError, match=message):
        GRPOLoss(entropy_coef=entropy_coef)(**args)


def test_loss_rejects_negative_coefficients() -> None:
    with pytest.raises(ValueError, match="kl_coef"):
        GRPOLoss(kl_coef=-0.1)
    with pytest.raises(ValueError, match="entropy_coef"):
        GRPOLoss(entropy_coef=-0.1)


def test_pieces_are_chosen_by_class_path() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--loss", type=GRPOLoss)
    parser.add_argument("--advantage", type=AdvantageNormalizer)
    cfg = parser.parse_object(
        {
            "loss": {
                "class_path": "pebr_lit.grpo.losses.GRPOLoss",
                "init_args": {
                    "kl": {"class_path": "pebr_lit.grpo.kl.K1"},
                    "aggregation": {"class_path": "pebr_lit.grpo.aggregation.SequenceMean"},
                    "policy_loss": {
                        "class_path": "pebr_lit.grpo.losses.ClippedSurrogate",
                        "init_args": {"dual_clip_c": None},
                    },
                },
            },
            "advantage": {"class_path": "pebr_lit.grpo.advantages.GroupMeanOnly"},
        }
    )
    built = parser.instantiate(cfg)
    assert isinstance(built.loss.kl, K1) and isinstance(built.loss.aggregation, SequenceMean)
    assert built.loss.policy_loss.dual_clip_c is None and isinstance(built.advantage, GroupMeanOnly)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 4),
    length=st.integers(1, 6),
    aggregation=st.sampled_from([TokenMean(), SequenceMean()]),
    kl=st.sampled_from([K1(), K2(), K3()]),
)
def test_random_finite_inputs_give_finite_loss_and_grads(data, n, length, aggregation, kl) -> None:
    def floats(lo, hi, size):
        return t(data.draw(st.lists(st.floats(lo, hi), min_size=size, max_size=size)))

    logp = floats(-50, 0, n * length).view(n, length).requires_grad_()
    old, ref = floats(-50, 0, n * length).view(n, length), floats(-50, 0, n * length).view(n, length)
    mask = t(data.draw(st.lists(st.booleans(), min_size=n * length, max_size=n * length))).bool().view(n, length)
    grpo = GRPOLoss(kl=kl, kl_coef=0.05, aggregation=aggregation, entropy_coef=0.01)
    loss, stats = grpo(logp, old, ref, floats(-10, 10, n), mask, entropy=floats(0, 10, n * length).view(n, length))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert all(math.isfinite(v.item()) for v in stats.values())
    assert (logp.grad[~mask] == 0).all()
    for name in ("clip_fraction", "clip_fraction_low", "clip_fraction_high", "dual_clip_fraction"):
        assert 0.0 <= stats[name].item() <= 1.0


@pytest.mark.parametrize("aggregation", [TokenMean(), SequenceMean()])
def test_micro_batches_weighted_by_weight_reproduce_the_batch(aggregation):
    # Rows of lengths 1, 3, 2, 0: splitting into [0:1] and [1:4] and re-weighting must give the same value.
    values = torch.tensor([[1.0, 0, 0], [2.0, 4.0, 6.0], [3.0, 5.0, 0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 0, 0], [1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    whole = aggregation(values, mask)
    parts = sum(
        aggregation(values[a:b], mask[a:b]) * aggregation.weight(mask[a:b]) / aggregation.weight(mask)
        for a, b in [(0, 1), (1, 4)]
    )
    torch.testing.assert_close(parts, whole)
