"""Log-probs and entropy of one response the slow, obvious way: one unpadded forward, logits / T, log-softmax."""

from __future__ import annotations

import torch

from pebr_lit.data.collate import encode_prompts


def manual_logprobs(policy, record, response_ids: torch.Tensor, temperature: float = 1.0):
    """``(logprobs [n], entropy [n])`` of ``response_ids`` [n] answering ``record`` under softmax(logits / T).

    No padding, no image-feature reuse, no chunking, float64 softmax: what ``token_logprobs`` must match.
    """
    single = encode_prompts(policy.processor, [record.problem], [record.load_images()])
    n = response_ids.shape[0]
    ids = torch.cat([single["input_ids"], response_ids[None]], dim=1)  # [1, P+n]
    inputs = dict(single, input_ids=ids, attention_mask=torch.ones_like(ids))
    inputs["mm_token_type_ids"] = torch.cat([single["mm_token_type_ids"], torch.zeros(1, n, dtype=torch.long)], dim=1)
    with torch.no_grad():
        logits = policy.model(**inputs).logits[0]  # [P+n, V]
    p = single["input_ids"].shape[1]
    logp = (logits[p - 1 : p - 1 + n].double() / temperature).log_softmax(-1)  # [n, V]
    return logp.gather(-1, response_ids[:, None]).squeeze(-1), -(logp.exp() * logp).sum(-1)  # [n], [n]
