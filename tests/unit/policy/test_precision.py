"""check_update_precision: the rounding rule derived by hand, and what it refuses and lets through."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.policy.precision import TYPICAL_WEIGHT, check_update_precision, smallest_kept_update

bf16 = torch.bfloat16


def adamw(*groups: tuple[torch.dtype, bool], lr: float = 1e-6) -> torch.optim.AdamW:
    """One param group holding a weight of 0.01 per (dtype, trainable) pair."""
    params = [torch.nn.Parameter(torch.full((4,), 0.01, dtype=d), requires_grad=t) for d, t in groups]
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def test_smallest_kept_update_is_half_an_ulp_at_a_power_of_two():
    # |w| * eps / 2 with eps = 2^-7 (bf16), 2^-10 (fp16), 2^-23 (fp32), |w| = 0.01.
    assert smallest_kept_update(bf16) == pytest.approx(0.01 * 2**-8)  # 3.9e-5
    assert smallest_kept_update(torch.float16) == pytest.approx(0.01 * 2**-11)  # 4.9e-6
    assert smallest_kept_update(torch.float32) == pytest.approx(0.01 * 2**-24)  # 6.0e-10
    # At w = 2^-7 (a power of two) half an ulp is exactly w * eps / 2 = 2^-15: a move just below it rounds
    # back to w, one just above reaches the next bf16 value.
    w, half_ulp = torch.tensor(2.0**-7), smallest_kept_update(bf16, 2.0**-7)
    assert half_ulp == 2.0**-15
    assert (w + 0.9 * half_ulp).to(bf16) == w.to(bf16)
    assert (w + 1.1 * half_ulp).to(bf16) == w.to(bf16) + 2.0**-14


@pytest.mark.parametrize(("dtype", "moves"), [(bf16, False), (torch.float32, True)])
def test_an_adamw_step_at_lr_1e_6_is_lost_on_a_bf16_weight_of_0_01(dtype, moves):
    # The first Adam step is lr * g / (|g| + eps) ~ 1e-6; bf16's half ulp at 0.01 is 2^-15 ~ 3.1e-5.
    p = torch.nn.Parameter(torch.full((8,), TYPICAL_WEIGHT, dtype=dtype))
    before = p.detach().clone()
    opt = torch.optim.AdamW([p], lr=1e-6, weight_decay=0.01)
    p.grad = torch.ones_like(p)
    opt.step()
    assert bool((p != before).all()) is moves


def test_bf16_weights_at_lr_1e_6_are_refused_with_the_fix():
    with pytest.raises(ValueError) as caught:
        check_update_precision([adamw((bf16, True))])
    message = str(caught.value)
    assert message.startswith("AdamW.lr=1e-06: param group 0 trains 1 tensors stored in bfloat16")
    for fix in ("bf16-mixed", "32-true", "param_dtype bfloat16", "allow_low_precision_updates: true"):
        assert fix in message, fix


@pytest.mark.parametrize(
    ("groups", "lr", "refused"),
    [
        ([(torch.float32, True)], 1e-6, False),  # fp32 master weights (32-true, bf16-mixed, FSDP2 fp32 shards)
        ([(bf16, False), (torch.float32, True)], 1e-6, False),  # fp32 LoRA adapters over a frozen bf16 base
        ([(bf16, True)], 4.0e-5, False),  # just above 0.01 * 2^-8 = 3.9e-5
        ([(bf16, True)], 3.8e-5, True),  # just below
        ([(torch.float16, True)], 1e-6, True),  # fp16: 4.9e-6
        ([(torch.float16, True)], 1e-5, False),
    ],
)
def test_the_threshold_per_dtype(groups, lr, refused):
    opt = adamw(*groups, lr=lr)
    if refused:
        with pytest.raises(ValueError, match=r"AdamW\.lr="):
            check_update_precision([opt])
    else:
        assert check_update_precision([opt]) == []


def test_a_warm_up_is_judged_by_its_peak_rate():
    # LambdaLR sets lr = initial_lr * factor(0) = 1e-4 / 100 = 1e-6 at construction; the peak 1e-4 is what counts.
    opt = adamw((bf16, True), lr=1e-4)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.01)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)
    assert check_update_precision([opt]) == []


def test_the_opt_out_warns_instead():
    with pytest.warns(UserWarning, match="allow_low_precision_updates: true"):
        found = check_update_precision([adamw((bf16, True))], allow=True)
    assert len(found) == 1 and "bfloat16" in found[0]
