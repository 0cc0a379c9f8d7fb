"""The shared LoRA merge (``pebr_lit.policy.lora``) on tiny matrices, against values derived by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pebr_lit.policy.lora import canonical_name, fold, merge_lora_state, merged_weights, unwrap

# r = 1, alpha = 2, so scale = alpha / r = 2.  A is [r, in] = [1, 2], B is [out, r] = [2, 1]:
#   B @ A = [[1*1, 1*2], [3*1, 3*2]] = [[1, 2], [3, 6]]
#   W + 2 * B @ A = [[1, 0], [0, 1]] + [[2, 4], [6, 12]] = [[3, 4], [6, 13]]
A = torch.tensor([[1.0, 2.0]])
B = torch.tensor([[1.0], [3.0]])
W = torch.eye(2)
MERGED = torch.tensor([[3.0, 4.0], [6.0, 13.0]])


def test_canonical_name_strips_peft_prefix_and_base_layer():
    assert canonical_name("base_model.model.lm.q_proj.base_layer.weight") == "lm.q_proj.weight"
    assert canonical_name("lm.q_proj.weight") == "lm.q_proj.weight"


def test_merge_lora_state_folds_a_pair_into_the_base_weight():
    state = {
        "base_model.model.lm.q_proj.lora_A.default.weight": A,
        "base_model.model.lm.q_proj.lora_B.default.weight": B,
        "base_model.model.lm.q_proj.base_layer.bias": torch.tensor([5.0, 7.0]),
    }
    # the slim checkpoint holds no W: it comes from the base, by canonical name
    merged = merge_lora_state(state, scale=2.0, base={"lm.q_proj.weight": W})
    assert set(merged) == {"lm.q_proj.weight", "lm.q_proj.bias"}  # no adapter entries left
    assert torch.equal(merged["lm.q_proj.weight"], MERGED)
    assert torch.equal(merged["lm.q_proj.bias"], torch.tensor([5.0, 7.0]))


def test_merge_lora_state_prefers_the_states_own_base_weight():
    # full W in the state (a trained base) wins over the fresh one: 2 * I + 2 * B @ A = [[4, 4], [6, 14]]
    state = {"m.lora_A.default.weight": A, "m.lora_B.default.weight": B, "m.weight": 2 * W}
    merged = merge_lora_state(state, scale=2.0, base={"m.weight": W})
    assert torch.equal(merged["m.weight"], torch.tensor([[4.0, 4.0], [6.0, 14.0]]))


def test_merge_lora_state_without_a_base_weight_names_the_module():
    with pytest.raises(ValueError, match=r"LoRA weights for m but no base weight m\.weight"):
        merge_lora_state({"m.lora_A.default.weight": A, "m.lora_B.default.weight": B}, scale=2.0, base={})


def test_fold_sums_in_fp32_and_rounds_once():
    # bf16 has 8 significant bits: the spacing just above 1.0 is 2**-7. Three deltas of 2**-9 sum in
    # fp32 to 1 + 0.75 * 2**-7, which rounds to 1 + 2**-7; added one by one in bf16 each would round
    # away (a quarter spacing) and leave 1.0.
    weight = torch.tensor([1.0], dtype=torch.bfloat16)
    deltas = [torch.tensor([2.0**-9], dtype=torch.bfloat16)] * 3
    out = fold(weight, deltas)
    assert out.dtype == torch.bfloat16
    assert out.item() == 1 + 2.0**-7


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)
        self.head = nn.Linear(2, 1, bias=False)


def test_merged_weights_of_a_peft_model_match_the_hand_merge():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(_Tiny(), peft.LoraConfig(r=1, lora_alpha=2, target_modules=["proj"]))
    layer = unwrap(model).proj
    with torch.no_grad():
        layer.get_base_layer().weight.copy_(W)
        layer.get_base_layer().bias.copy_(torch.tensor([5.0, 7.0]))
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
    weights = dict(merged_weights(unwrap(model)))
    assert list(weights) == ["proj.weight", "proj.bias", "head.weight"]  # HF names, adapter modules left out
    assert torch.equal(weights["proj.weight"](), MERGED)
    assert torch.equal(weights["proj.bias"](), torch.tensor([5.0, 7.0]))
    assert torch.equal(layer.get_base_layer().weight, W)  # the adapter stays live: nothing merged in place
    with model.disable_adapter():
        assert torch.equal(weights["proj.weight"](), W)  # switched off: the layer computes with W alone
