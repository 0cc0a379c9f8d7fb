"""PolicyWrapper contract on the tiny model: loading, freezing, sampling, log-probs, reference, export."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.errors import ConfigError
from pebr_lit.policy.inputs import expand_prompts, images_per_row
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


@pytest.fixture(scope="module")
def records(world):
    return load_records(world / "val.jsonl")[:3]


def _prompts(policy, records):
    return encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])


def _manual_logprobs(policy, record, response_ids):
    """Log-probs from one unpadded forward of prompt + response, the slow obvious way."""
    single = _prompts(policy, [record])
    n = response_ids.shape[0]
    ids = torch.cat([single["input_ids"], response_ids[None]], dim=1)  # [1, P+n]
    inputs = dict(single, input_ids=ids, attention_mask=torch.ones_like(ids))
    inputs["mm_token_type_ids"] = torch.cat([single["mm_token_type_ids"], torch.zeros(1, n, dtype=torch.long)], dim=1)
    with torch.no_grad():
        logits = policy.model(**inputs).logits[0]  # [P+n, V]
    p = single["input_ids"].shape[1]
    return logits[p - 1 : p - 1 + n].log_softmax(-1).gather(-1, response_ids[:, None]).squeeze(-1)


def test_prompts_are_left_padded(policy, records):
    batch = _prompts(policy, records)
    mask = batch["attention_mask"]  # [B, P]
    assert (mask[:, -1] == 1).all(), "every prompt must end at the last column"
    assert mask.sum(1).unique().numel() > 1, "fixture should have prompts of different lengths"


def test_generate_shapes_and_masks(policy, records):
    torch.manual_seed(0)
    rollout = policy.generate(_prompts(policy, records), SamplingSettings(num_samples=3, max_new_tokens=12))
    assert rollout.response_ids.shape[0] == 9 and rollout.response_ids.shape[1] <= 12
    assert rollout.prompt_ids.shape[0] == 9 and len(rollout.texts) == 9
    # A mask is a prefix of ones; a row ends early only at an end token.
    for row_ids, row_mask, truncated in zip(rollout.response_ids, rollout.response_mask, rollout.truncated):
        n = int(row_mask.sum())
        assert row_mask[:n].all() and not row_mask[n:].any()
        if not truncated:
            assert int(row_ids[n - 1]) in policy.eos_token_ids


def test_logprobs_match_manual_forward_for_every_row(policy, records):
    torch.manual_seed(1)
    prompts = _prompts(policy, records)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=10))
    logprobs, entropy = policy.token_logprobs(
        prompts, rollout.response_ids, rollout.response_mask, num_samples=2, with_entropy=True
    )
    assert logprobs.shape == rollout.response_ids.shape == entropy.shape
    for i in range(rollout.response_ids.shape[0]):
        n = int(rollout.response_mask[i].sum())
        expected = _manual_logprobs(policy, records[i // 2], rollout.response_ids[i, :n])
        torch.testing.assert_close(logprobs[i, :n].detach(), expected, atol=1e-4, rtol=1e-4)
        assert (logprobs[i, n:] == 0).all()
    assert (entropy[rollout.response_mask.bool()] > 0).all()


def test_expand_prompts_keeps_images_with_their_rows(policy, records):
    prompts = _prompts(policy, records)
    counts = images_per_row(prompts, policy.model.config.image_token_id, 2)
    assert counts == [1, 1, 1]
    out = expand_prompts(prompts, 2, counts)
    patches = prompts["image_grid_thw"].prod(-1).tolist()
    blocks = prompts["pixel_values"].split(patches)
    out_blocks = out["pixel_values"].split(out["image_grid_thw"].prod(-1).tolist())
    assert [torch.equal(a, blocks[i // 2]) for i, a in enumerate(out_blocks)] == [True] * 6
    with pytest.raises(ValueError, match="images_per_prompt"):
        expand_prompts(prompts, 2, [1, 1])


def test_freezing_options(assets):
    frozen = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    names = {n for n, p in frozen.model.named_parameters() if not p.requires_grad}
    assert any(".visual.blocks." in n for n in names) and any(".visual.merger." in n for n in names)
    assert all("language_model" not in n for n in names)
    partly = PolicyWrapper(str(assets["vlm"]), dtype="float32", freeze_projector=False)
    assert all(p.requires_grad for n, p in partly.model.named_parameters() if ".visual.merger." in n)


def test_lora_is_language_model_only_and_reference_disables_it(assets, records):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    lora_names = [n for n, _ in policy.model.named_parameters() if "lora_" in n]
    assert lora_names and all("language_model" in n for n in lora_names)
    assert all(("lora_" in n) == p.requires_grad for n, p in policy.model.named_parameters())
    prompts = _prompts(policy, records)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=1, max_new_tokens=8))
    with torch.no_grad():
        before, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask)
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)  # LoRA B starts at zero; make the adapter change the model
        after, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask)
        with policy.reference():
            ref, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(ref, before)


def test_reference_without_adapter_is_an_error(policy):
    with pytest.raises(RuntimeError, match="LoRA"):
        with policy.reference():
            pass


def test_merged_export_loads_with_plain_transformers(assets, records, tmp_path):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    prompts = _prompts(policy, records)
    rollout = policy.generate(prompts, SamplingSettings(num_samples=1, max_new_tokens=8))
    with torch.no_grad():
        expected, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask)
    out = policy.save_pretrained(tmp_path / "merged")
    plain = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    reloaded = PolicyWrapper(str(out), dtype="float32")
    with torch.no_grad():
        got, _ = reloaded.token_logprobs(prompts, rollout.response_ids, rollout.response_mask)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bad_settings_fail_at_construction(assets, tmp_path):
    from pebr_lit.policy.settings import QuantizationSettings

    with pytest.raises(ValueError, match="needs lora"):
        PolicyWrapper(str(assets["vlm"]), quantization=QuantizationSettings())
    with pytest.raises(ConfigError, match="not a directory"):
        PolicyWrapper(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=0.0)
    with pytest.raises(ValueError, match="rank|positive"):
        LoraSettings(r=0)


def test_checkpoint_sampling_defaults_do_not_leak_into_rollouts(assets, records, monkeypatch):
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    policy.model.generation_config.repetition_penalty = 1.5
    policy.model.generation_config.top_k = 1
    seen = {}
    original = policy.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(policy.model, "generate", spy)
    policy.generate(_prompts(policy, records), SamplingSettings(num_samples=2, max_new_tokens=4))
    assert seen["repetition_penalty"] == 1.0 and seen["top_k"] == 0
