"""PolicyWrapper loads a Qwen2-VL checkpoint (the older family) through the same auto classes."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoTokenizer,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


@pytest.fixture(scope="module")
def qwen2vl_dir(assets, tmp_path_factory):
    """A tiny Qwen2-VL saved to disk, sharing the tiny Qwen2.5-VL's tokenizer and chat template."""
    tok = AutoTokenizer.from_pretrained(assets["vlm"])
    ids = {
        t: tok.convert_tokens_to_ids(t)
        for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<|endoftext|>")
    }
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=64,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config)
    vision = dict(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=56 * 56, max_pixels=112 * 112)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(**vision),
        chat_template=tok.chat_template,
    )
    out = tmp_path_factory.mktemp("qwen2vl")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def test_qwen2vl_samples_scores_and_takes_lora(qwen2vl_dir, world):
    policy = PolicyWrapper(str(qwen2vl_dir), dtype="float32", lora=LoraSettings(r=2, alpha=4, dropout=0.0))
    assert type(policy.model.get_base_model()).__name__ == "Qwen2VLForConditionalGeneration"
    assert all("language_model" in n for n, p in policy.model.named_parameters() if p.requires_grad)
    records = load_records(world / "val.jsonl")[:2]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    rollout = policy.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=6))
    logprobs, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    assert logprobs.shape == rollout.response_ids.shape and torch.isfinite(logprobs).all()
    with policy.reference():
        ref, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    torch.testing.assert_close(ref, logprobs.detach())  # LoRA B starts at zero: adapter is a no-op
