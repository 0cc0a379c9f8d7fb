"""Policy losses: the clipped surrogate and the composed GRPO loss, against hand-derived values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pebr_lit.grpo.advantages import AdvantageNormalizer, GroupMeanOnly
from pebr_lit.grpo.aggregation import SequenceMean, TokenMean
from pebr_lit.grpo.kl import K1, K2, K3
from pebr_lit.grpo.losses import ClippedSurrogate, GRPOLoss
from tests.helpers.tensors import f64, t


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
        ({"dual_clip_c": 1.0}, r"^ClippedSurrogate\.dual_clip_c=1\.0: must be > 1"),
        ({"log_ratio_clamp": 0.0}, "log_ratio_clamp"),
    ],
)
def test_surrogate_rejects_bad_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ClippedSurrogate(**kwargs)


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
