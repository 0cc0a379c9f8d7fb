"""sdpa_folded_gqa decodes exactly like Hugging Face's sdpa (the tiny model has 4 query heads over 2 KV heads)."""

from __future__ import annotations

import torch

from pebr_lit.data.collate import collate_prompts
from pebr_lit.data.records import load_records
from pebr_lit.format.prompts import InstructionPrompt
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
