"""Stage hand-over contract: slim checkpoints written by hand, loaded with ``load_policy_weights``.

Every direction (full/LoRA -> full/LoRA) is checked against values derived from the tensors
themselves; the error cases check that the message names the offending path or weight.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pebr_lit.ckpt.safe_load import CheckpointError
from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.checkpoint import (
    POLICY_PREFIX,
    check_checkpoint_keys,
    load_policy_weights,
    slim_checkpoint,
    trainable_state_dict,
)
from pebr_lit.policy.lora import canonical_name
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper

LORA = LoraSettings(r=4, alpha=8, dropout=0.0)  # scale alpha / r = 2


class Holder(nn.Module):
    """What a stage LightningModule looks like to the checkpoint helpers: a ``policy`` attribute."""

    def __init__(self, policy: PolicyWrapper) -> None:
        super().__init__()
        self.policy = policy


def _full(assets) -> PolicyWrapper:
    return PolicyWrapper(str(assets["vlm"]), dtype="float32")


def _lora(assets) -> PolicyWrapper:
    return PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LORA)


def _train(policy: PolicyWrapper, seed: int) -> None:
    """Stand-in for a stage's training: move every trainable tensor (LoRA B starts at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in policy.model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def _trained(policy: PolicyWrapper) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}


def _write(path: Path, policy: PolicyWrapper, weights: dict[str, torch.Tensor] | None = None) -> Path:
    """A slim Lightning checkpoint, as ``slim_checkpoint`` would leave it, built by hand."""
    weights = _trained(policy) if weights is None else weights
    state = {POLICY_PREFIX + n: v for n, v in weights.items()}
    torch.save({"state_dict": state, "pebr_policy": policy.describe(), "epoch": 0}, path)
    return path


def _params(policy: PolicyWrapper) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.model.named_parameters()}


# ----------------------------------------------------------------------------------- directions
def test_full_to_full_copies_trained_weights(assets, tmp_path):
    source = _full(assets)
    _train(source, seed=1)
    ckpt = _write(tmp_path / "full.ckpt", source)
    target = _full(assets)
    before = _params(target)
    counts = load_policy_weights(target.model, ckpt, has_adapter=False)
    trained = _trained(source)
    assert counts == {"loaded": len(trained), "merged_adapters": 0}
    after = _params(target)
    for name, value in after.items():
        if name in trained:
            assert torch.equal(value, trained[name]), name
        else:  # frozen vision tower: not in the slim checkpoint, left as loaded from the base
            assert torch.equal(value, before[name]), name
    assert any(".visual." in n for n in after if n not in trained), "fixture should have frozen weights"


def test_lora_to_lora_copies_adapters_and_leaves_base(assets, tmp_path):
    source = _lora(assets)
    _train(source, seed=2)
    ckpt = _write(tmp_path / "lora.ckpt", source)
    target = _lora(assets)
    before = _params(target)
    counts = load_policy_weights(target.model, ckpt, has_adapter=True)
    trained = _trained(source)
    # 7 target layers x 2 decoder layers x (A, B)
    assert counts == {"loaded": 28, "merged_adapters": 0} and len(trained) == 28
    for name, value in _params(target).items():
        assert torch.equal(value, trained[name] if name in trained else before[name]), name


def test_lora_to_full_merges_adapter_into_base(assets, world, tmp_path):
    torch.manual_seed(0)
    source = _lora(assets)
    _train(source, seed=3)
    ckpt = _write(tmp_path / "lora.ckpt", source)
    target = _full(assets)
    base = _params(target)
    counts = load_policy_weights(target.model, ckpt, has_adapter=False)
    assert counts == {"loaded": 14, "merged_adapters": 14}

    # By hand for one layer: W' = W + alpha / r * B @ A, with W the base both policies loaded.
    peft_prefix = "base_model.model.model.language_model.layers.1.mlp.down_proj"
    a = source.model.get_parameter(f"{peft_prefix}.lora_A.default.weight")  # [r, in]
    b = source.model.get_parameter(f"{peft_prefix}.lora_B.default.weight")  # [out, r]
    name = "model.language_model.layers.1.mlp.down_proj.weight"
    expected = base[name] + (LORA.alpha / LORA.r) * (b @ a).detach()  # [out, in]
    torch.testing.assert_close(target.model.get_parameter(name).detach(), expected)
    assert not torch.allclose(expected, base[name]), "the adapter must change the weight for this to test anything"
    # Weights without an adapter (norms, embeddings) keep the base values.
    norm = "model.language_model.norm.weight"
    assert torch.equal(target.model.get_parameter(norm), base[norm])

    # The merged full model scores a rollout as the LoRA model did.
    records = load_records(world / "val.jsonl")[:2]
    prompts = encode_prompts(source.processor, [r.problem for r in records], [r.load_images() for r in records])
    rollout = source.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))
    with torch.no_grad():
        expected_lp, _ = source.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
        got_lp, _ = target.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
        with source.reference():
            base_lp, _ = source.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    torch.testing.assert_close(got_lp, expected_lp, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(base_lp, expected_lp, atol=1e-3), "the adapter must change the log-probs"


def test_full_to_lora_sets_the_base_and_leaves_adapters(assets, tmp_path):
    source = _full(assets)
    _train(source, seed=4)
    ckpt = _write(tmp_path / "full.ckpt", source)
    target = _lora(assets)
    before = _params(target)
    counts = load_policy_weights(target.model, ckpt, has_adapter=True)
    trained = _trained(source)
    assert counts == {"loaded": len(trained), "merged_adapters": 0}
    after = {canonical_name(n): v for n, v in _params(target).items() if "lora_" not in n}
    for name, value in trained.items():
        assert torch.equal(after[name], value), name
    # A wrapped layer by its peft name, spelled out: the trained weight sits under base_layer.
    q = "base_model.model.model.language_model.layers.0.self_attn.q_proj.base_layer.weight"
    assert torch.equal(target.model.get_parameter(q), trained["model.language_model.layers.0.self_attn.q_proj.weight"])
    for name, value in _params(target).items():
        if "lora_" in name:
            assert torch.equal(value, before[name]), name


# --------------------------------------------------------------------------------------- errors
def test_missing_file_names_path_and_what_to_point_at(assets, tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError) as err:
        load_policy_weights(_full(assets).model, missing, has_adapter=False)
    assert str(missing) in str(err.value) and "Lightning checkpoint" in str(err.value)


def test_checkpoint_without_policy_weights(assets, tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match="no 'policy.model.\\*' weights"):
        load_policy_weights(_full(assets).model, path, has_adapter=False)
    torch.save({"weights": {}}, path)
    with pytest.raises(ValueError, match="no 'state_dict'"):
        load_policy_weights(_full(assets).model, path, has_adapter=False)


def test_weight_without_counterpart_is_named(assets, tmp_path):
    policy = _full(assets)
    ckpt = _write(tmp_path / "x.ckpt", policy, {"model.language_model.extra_head.weight": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="'model.language_model.extra_head.weight' has no counterpart"):
        load_policy_weights(policy.model, ckpt, has_adapter=False)
    # LoRA -> LoRA with other targets: layer 0's k_proj adapter (first after q_proj) has no place here.
    source = _lora(assets)
    q_only = PolicyWrapper(
        str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj"])
    )
    ckpt = _write(tmp_path / "lora.ckpt", source)
    with pytest.raises(ValueError, match=r"layers\.0\.self_attn\.k_proj\.lora_A\.default\.weight' has no counterpart"):
        load_policy_weights(q_only.model, ckpt, has_adapter=True)


def test_shape_mismatch_is_named_with_both_shapes(assets, tmp_path):
    policy = _full(assets)
    name = "model.language_model.norm.weight"
    before = policy.model.get_parameter(name).detach().clone()  # [128]
    ckpt = _write(tmp_path / "x.ckpt", policy, {name: torch.ones(64)})
    with pytest.raises(
        ValueError, match=r"'model.language_model.norm.weight' has shape \(64,\), the policy expects \(128,\)"
    ):
        load_policy_weights(policy.model, ckpt, has_adapter=False)
    assert torch.equal(policy.model.get_parameter(name), before), "nothing may load half-way"


# ------------------------------------------------------------------------- Lightning hook bodies
def test_trainable_state_dict_keeps_parameters_with_grad_only():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    net[0].requires_grad_(False)
    state = (
        net.state_dict()
    )  # 0.{weight,bias}, 1.{weight,bias,running_mean,running_var,num_batches_tracked}, 2.{weight,bias}
    assert set(trainable_state_dict(net, state)) == {"1.weight", "1.bias", "2.weight", "2.bias"}


def test_slim_checkpoint_keeps_adapters_and_describes_policy(assets):
    holder = Holder(_lora(assets))
    checkpoint = {"state_dict": holder.state_dict(), "epoch": 3}
    slim_checkpoint(holder, checkpoint)
    expected = {POLICY_PREFIX + n for n, p in holder.policy.model.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == expected and len(expected) == 28
    assert all(".lora_A." in k or ".lora_B." in k for k in expected)
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": LORA.target_modules, "language_model_only": True}
    assert checkpoint["pebr_policy"] == {"source": str(assets["vlm"]), "lora": lora, "quantization": None}
    assert checkpoint["epoch"] == 3, "the rest of the checkpoint is left alone"


def test_slim_checkpoint_round_trips_through_load_policy_weights(assets, tmp_path):
    holder = Holder(_lora(assets))
    _train(holder.policy, seed=5)
    checkpoint = {"state_dict": holder.state_dict()}
    slim_checkpoint(holder, checkpoint)
    torch.save(checkpoint, tmp_path / "slim.ckpt")
    target = _lora(assets)
    load_policy_weights(target.model, tmp_path / "slim.ckpt", has_adapter=True)
    for name, value in _trained(holder.policy).items():
        assert torch.equal(target.model.get_parameter(name), value), name


def test_check_checkpoint_keys_refuses_unknown_names(assets):
    holder = Holder(_lora(assets))
    checkpoint = {"state_dict": holder.state_dict()}
    slim_checkpoint(holder, checkpoint)
    check_checkpoint_keys(holder, checkpoint)  # its own slim checkpoint is fine
    checkpoint["state_dict"]["policy.model.bogus.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="policy.model.bogus.weight"):
        check_checkpoint_keys(holder, checkpoint)
    # A full fine-tune's checkpoint does not fit a LoRA module: its names have no base_model prefix.
    full_state = {POLICY_PREFIX + "model.language_model.norm.weight": torch.ones(128)}
    with pytest.raises(ValueError, match="same policy settings"):
        check_checkpoint_keys(holder, {"state_dict": full_state})


def test_export_cli_writes_a_plain_transformers_model(assets, tmp_path):
    from transformers import AutoModelForImageTextToText

    from pebr_lit.policy.export import main as export_main

    policy = _lora(assets)
    _train(policy, seed=3)
    ckpt = _write(tmp_path / "stage.ckpt", policy)
    export_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "hf")])
    plain = AutoModelForImageTextToText.from_pretrained(tmp_path / "hf")
    assert not any("lora" in n for n, _ in plain.named_parameters())
    merged = policy.save_pretrained(tmp_path / "direct")  # the in-process merge of the same weights
    direct = AutoModelForImageTextToText.from_pretrained(merged)
    for (name, a), (_, b) in zip(plain.state_dict().items(), direct.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
