"""The preallocated KV cache samples exactly the tokens Hugging Face's dynamic cache samples.

Same seed, same prompts -> bitwise identical response tokens, masks and texts, and the same RNG state
afterwards (the next call's samples depend on it), for greedy and sampled decoding, with and without
left padding, several samples per prompt, rows stopping at an end token at different steps, and the
``max_new_tokens`` cut-off; on the tiny Qwen2.5-VL with each CPU attention kernel, LoRA-wrapped, and on
a tiny Qwen2-VL. The cache's own bookkeeping (crop, row selection, growth) is checked against
``DynamicLayer``.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    GenerationConfig,
    Qwen2Config,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.cache_utils import DynamicLayer

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.kv_cache import PreallocatedLayer, preallocated_cache, wants_preallocated
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper

SAMPLED = SamplingSettings(num_samples=4, temperature=0.7, top_p=0.9, max_new_tokens=40)
GREEDY = SamplingSettings(do_sample=False, max_new_tokens=40)


@pytest.fixture(scope="module")
def records(world):
    return load_records(world / "val.jsonl")[:3]


def _prompts(policy, records):
    return encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])


def _rollouts(policy, prompts, sampling, monkeypatch, seed=0):
    """``{cache: (rollout, RNG state after)}``, and how many prefill/decode updates the preallocated cache saw."""
    updates = Counter()
    original = PreallocatedLayer.update

    def counting(self, *args, **kwargs):
        updates["calls"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PreallocatedLayer, "update", counting)
    out = {}
    for cache in ("dynamic", "preallocated"):
        monkeypatch.setattr(policy, "kv_cache", cache)
        torch.manual_seed(seed)
        out[cache] = (policy.generate(prompts, sampling), torch.get_rng_state())
    return out, updates["calls"]


def _assert_same(out):
    (a, rng_a), (b, rng_b) = out["dynamic"], out["preallocated"]
    for field in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "truncated"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.texts == b.texts
    assert torch.equal(rng_a, rng_b), "the RNG must be left where Hugging Face's cache leaves it"


@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
@pytest.mark.parametrize("rows", [3, 1], ids=["left-padded", "unpadded"])
def test_same_tokens_as_dynamic_cache(policy, records, sampling, rows, monkeypatch):
    prompts = _prompts(policy, records[:rows])
    assert (prompts["attention_mask"] == 0).any() == (rows > 1)
    out, updates = _rollouts(policy, prompts, sampling, monkeypatch)
    _assert_same(out)
    rollout = out["preallocated"][0]
    assert rollout.response_ids.shape == (rows * sampling.num_samples, 40)  # the untrained model runs to the cut-off
    assert rollout.truncated.any()
    layers = policy.model.config.get_text_config().num_hidden_layers
    assert updates == layers * 40, "one prefill + 39 decode updates per layer: the preallocated cache was used"


def test_rows_stopping_at_different_steps(policy, records, monkeypatch):
    """A token the model samples in some rows but not all plays end-of-turn: rows stop at different steps."""
    prompts = _prompts(policy, records)
    torch.manual_seed(1)
    probe = policy.generate(prompts, SAMPLED).response_ids  # [12, 40]
    rows_with = Counter(t for row in probe.tolist() for t in set(row[2:30]))
    stop = min(rows_with, key=lambda t: abs(rows_with[t] - probe.shape[0] / 2))  # in about half the rows
    eos = sorted({stop, *policy.eos_token_ids})
    monkeypatch.setattr(PolicyWrapper, "eos_token_ids", property(lambda self: eos))
    out, _ = _rollouts(policy, prompts, SAMPLED, monkeypatch, seed=1)
    _assert_same(out)
    rollout = out["preallocated"][0]
    lengths = rollout.response_mask.sum(1)  # [12]
    assert rollout.truncated.any() and not rollout.truncated.all(), "some rows stop early, some hit max_new_tokens"
    assert lengths.unique().numel() > 2, "rows should end at different steps"


def _assert_same_logits(model, prompts, new_tokens=24, samples=3):
    """Sampled ``model.generate`` with each cache: the same tokens and bitwise the same logits at every step."""
    kwargs = dict(
        max_new_tokens=new_tokens,
        do_sample=True,
        top_k=0,
        num_return_sequences=samples,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=int(model.config.get_text_config().pad_token_id or 0),
    )
    outputs = []
    for cache in (None, preallocated_cache(model, prompts["input_ids"].shape[1] + new_tokens)):
        assert cache is not None or not outputs, "the preallocated cache must apply to this model"
        torch.manual_seed(0)
        with torch.no_grad():
            out = model.generate(**prompts, **kwargs, **({"past_key_values": cache} if cache else {}))
        outputs.append((out.sequences, torch.stack(out.logits)))  # [N, P+R], [R, N, V]
    (seq_a, logits_a), (seq_b, logits_b) = outputs
    assert torch.equal(seq_a, seq_b)
    assert torch.equal(logits_a, logits_b), "attention must see the same numbers as with the dynamic cache"
    assert logits_a.shape[0] == new_tokens


@pytest.mark.parametrize("attn", ["sdpa_folded_gqa", "sdpa", "eager"])
def test_same_logits_with_each_attention_kernel(assets, records, attn, monkeypatch):
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", attn_implementation=attn, kv_cache="preallocated")
    prompts = _prompts(policy, records)
    _assert_same_logits(policy.model.eval(), prompts)
    out, _ = _rollouts(policy, prompts, SAMPLED, monkeypatch)
    _assert_same(out)


def test_same_logits_with_lora(assets, records, monkeypatch):
    policy = PolicyWrapper(
        str(assets["vlm"]), dtype="float32", kv_cache="preallocated", lora=LoraSettings(r=4, alpha=8, dropout=0.1)
    )
    with torch.no_grad():  # a non-zero adapter, so the LoRA path changes the samples
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    prompts = _prompts(policy, records)
    out, updates = _rollouts(policy, prompts, SAMPLED, monkeypatch)
    _assert_same(out)
    assert updates > 0
    assert policy.model.training, "generate restores training mode"
    _assert_same_logits(policy.model.eval(), prompts)  # through the peft wrapper


def test_same_logits_on_qwen2vl(policy, records):
    """The older Qwen2-VL family (the tiny Qwen2.5-VL's processor fits it: same patches and tokens)."""
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(policy.tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            pad_token_id=policy.tokenizer.pad_token_id,
        ),
        vision_config=dict(
            depth=1,
            embed_dim=32,
            hidden_size=64,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=policy.model.config.image_token_id,
        video_token_id=policy.model.config.video_token_id,
        vision_start_token_id=policy.model.config.vision_start_token_id,
        vision_end_token_id=policy.model.config.vision_end_token_id,
    )
    torch.manual_seed(0)
    _assert_same_logits(Qwen2VLForConditionalGeneration(config).eval(), _prompts(policy, records))


def test_layer_bookkeeping_matches_dynamic_layer():
    torch.manual_seed(0)
    dynamic, prealloc = DynamicLayer(), PreallocatedLayer(capacity=7)  # grows past 7 below

    def both(method, *args):
        results = getattr(dynamic, method)(*args), getattr(prealloc, method)(*args)
        assert torch.equal(dynamic.keys, prealloc.keys) and torch.equal(dynamic.values, prealloc.values), method
        assert dynamic.get_seq_length() == prealloc.get_seq_length(), method
        return results

    both("update", torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4))  # prefill [B, KV, P, D]
    for _ in range(3):  # decode past the capacity
        both("update", torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4))
    both("crop", -2)
    both("update", torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4))
    both("batch_select_indices", torch.tensor([2, 0]))
    both("batch_repeat_interleave", 2)
    both("reorder_cache", torch.tensor([3, 1, 0, 2]))
    both("update", torch.randn(4, 2, 1, 4), torch.randn(4, 2, 1, 4))
    assert prealloc.get_seq_length() == 8


def test_unsupported_models_keep_hugging_faces_cache(policy):
    def model(config, **generation):
        return SimpleNamespace(config=config, generation_config=GenerationConfig(**generation))

    full = Qwen2Config(num_hidden_layers=2)
    assert preallocated_cache(model(full), 16) is not None
    windowed = Qwen2Config(num_hidden_layers=2, layer_types=["full_attention", "sliding_attention"], sliding_window=8)
    assert preallocated_cache(model(windowed), 16) is None
    assert preallocated_cache(model(full, use_cache=False), 16) is None
    assert preallocated_cache(model(full, cache_implementation="static"), 16) is None
    with pytest.raises(ValueError, match="kv_cache"):
        PolicyWrapper(policy.source, kv_cache="static")


def test_auto_means_preallocated_on_the_cpu_only():
    """``kv_cache: auto`` (the default) is proven on the CPU; other devices keep Hugging Face's cache."""
    assert wants_preallocated("auto", torch.device("cpu"))
    assert not wants_preallocated("auto", torch.device("cuda", 0))
    assert wants_preallocated("preallocated", torch.device("cuda", 0))
    assert not wants_preallocated("dynamic", torch.device("cpu"))
