"""sdpa_folded_gqa decodes exactly like Hugging Face's sdpa (the tiny model has 4 query heads over 2 KV heads)."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.data.collate import collate_prompts
from pebr_lit.data.records import load_records
from pebr_lit.format.prompts import InstructionPrompt
from pebr_lit.policy.kv_cache import preallocated_cache
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper


def test_folded_gqa_decoding_matches_sdpa_step_by_step(assets, world):
    records = load_records(world / "test.jsonl", limit=6)
    scores = {}
    for impl in ("sdpa", "sdpa_folded_gqa"):
        policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", attn_implementation=impl)
        assert policy.model.config._attn_implementation == impl
        prompts = collate_prompts(records, policy.processor, None, InstructionPrompt())[
            "prompts"
        ]  # left-padded: the mask is used
        torch.manual_seed(0)
        out = policy.model.generate(
            **prompts,
            max_new_tokens=12,
            do_sample=True,
            top_k=0,
            num_return_sequences=2,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=policy.tokenizer.pad_token_id,
        )
        scores[impl] = (out.sequences, torch.stack(out.scores))  # [N, P+R], [R, N, V]
    (seq_a, sc_a), (seq_b, sc_b) = scores["sdpa"], scores["sdpa_folded_gqa"]
    assert torch.equal(seq_a, seq_b)  # same seed, same distributions -> same samples
    finite = torch.isfinite(sc_a)
    assert torch.equal(finite, torch.isfinite(sc_b))
    assert torch.allclose(sc_a[finite], sc_b[finite], atol=1e-4, rtol=1e-4)
    assert sc_a.shape[0] == 12


def test_defaults_sample_like_the_plain_path(assets, world):
    """The defaults (sdpa_folded_gqa + kv_cache auto = preallocated on CPU) vs sdpa + Hugging Face's cache.

    Same seed -> the same response tokens from ``PolicyWrapper.generate``; the per-step log-softmax of the
    logits within 1e-5 (issue #17's bar; only float summation order differs); and the training log-prob pass,
    which neither setting touches, bitwise equal.
    """
    records = load_records(world / "test.jsonl", limit=3)
    default = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    plain = PolicyWrapper(str(assets["vlm"]), dtype="float32", attn_implementation="sdpa", kv_cache="dynamic")
    assert default.model.config._attn_implementation == "sdpa_folded_gqa" and default.kv_cache == "auto"
    prompts = collate_prompts(records, default.processor, None, InstructionPrompt())["prompts"]  # left-padded
    sampling = SamplingSettings(num_samples=4, temperature=1.0, top_p=1.0, max_new_tokens=24)
    rollouts, logprobs = {}, {}
    for name, policy in (("default", default), ("plain", plain)):
        torch.manual_seed(0)
        rollouts[name] = policy.generate(prompts, sampling)
        torch.manual_seed(0)
        cache = preallocated_cache(policy.model, prompts["input_ids"].shape[1] + 24) if policy is default else None
        with torch.no_grad():
            out = policy.model.generate(
                **prompts,
                max_new_tokens=24,
                do_sample=True,
                top_k=0,
                num_return_sequences=4,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=policy.tokenizer.pad_token_id,
                **({"past_key_values": cache} if cache is not None else {}),
            )
        logprobs[name] = torch.stack(out.logits).log_softmax(-1)  # [R, N, V]
    a, b = rollouts["default"], rollouts["plain"]
    assert torch.equal(a.response_ids, b.response_ids) and torch.equal(a.response_mask, b.response_mask)
    assert a.texts == b.texts
    assert logprobs["default"].shape == logprobs["plain"].shape
    assert (logprobs["default"] - logprobs["plain"]).abs().max() < 1e-5
    with torch.no_grad():
        scored = [
            p.token_logprobs(prompts, a.response_ids, a.response_mask, num_samples=4)[0] for p in (default, plain)
        ]
    assert torch.equal(scored[0], scored[1])  # [N, R]: prefill-style forwards go to the stock sdpa in both


def test_folded_default_falls_back_where_the_model_has_no_sdpa(assets, monkeypatch, caplog):
    """A model class that refuses sdpa loads with the library default (a warning says so) instead of failing."""
    from transformers import PreTrainedModel

    def refuse(self, is_init_check=False):
        raise ValueError("this model does not support an attention implementation through sdpa yet")

    monkeypatch.setattr(PreTrainedModel, "_sdpa_can_dispatch", refuse)
    with caplog.at_level("WARNING", logger="pebr_lit.policy.wrapper"):
        policy = PolicyWrapper(str(assets["vlm"]), dtype="float32")
    assert policy.model.config._attn_implementation == "eager"
    assert "sdpa_folded_gqa" in caplog.text
    with pytest.raises(ValueError, match="sdpa"):  # asked for by name: the error stands
        PolicyWrapper(str(assets["vlm"]), dtype="float32", attn_implementation="sdpa")
