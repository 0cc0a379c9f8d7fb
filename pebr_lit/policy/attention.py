"""``sdpa_folded_gqa``: SDPA attention that decodes grouped-query heads without copying the KV cache.

With grouped-query attention (fewer key/value heads than query heads) and a padding mask, Hugging
Face's ``sdpa`` repeats every key/value head ``groups`` times before calling
``scaled_dot_product_attention`` (``repeat_kv``): on CPU that copies the whole KV cache at every
decoding step, which measured 42 % of the tiny demo model's ``generate`` time. When one token is
decoded per row, the query heads that share a key/value head can instead be folded into the query
length — ``[B, H, 1, D] -> [B, KV, groups, D]`` — and attend to the cache as it is; the padding mask
``[B, 1, 1, L]`` broadcasts over the folded heads. The result is the same attention, without the
copy. Prefill, training forwards, masks with a head dimension and position biases go to the stock
``sdpa`` unchanged.

It is ``PolicyWrapper``'s default ``attn_implementation`` (importing this module registers it with
``transformers.AttentionInterface`` and ``AttentionMaskInterface``). The fold applies on the CPU only,
where the contract tests prove it equal to ``sdpa``; on other devices every call goes to the stock ``sdpa``
until a GPU run has proved the fold there.

Left out on purpose: flash-attention kernels and paged caches (use ``flash_attention_2`` / ``sdpa`` on GPUs).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import (
    ALL_MASK_ATTENTION_FUNCTIONS,
    AttentionMaskInterface,
)

NAME = "sdpa_folded_gqa"


def folded_gqa_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,  # [B, H, Q, D]
    key: torch.Tensor,  # [B, KV, L, D]
    value: torch.Tensor,  # [B, KV, L, D]
    attention_mask: torch.Tensor | None,  # [B, 1, Q, L] or None
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """One decoded token per row with grouped heads: folded; anything else: Hugging Face's ``sdpa``."""
    groups = int(getattr(module, "num_key_value_groups", 1))
    batch, heads, q_len, head_dim = query.shape
    foldable = (
        query.device.type == "cpu"
        and groups > 1
        and q_len == 1
        and key.shape[1] * groups == heads
        and kwargs.get("position_bias") is None
        and kwargs.get("cache") is None
        and (attention_mask is None or attention_mask.shape[1] == 1)
    )
    if not foldable:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)
    # Head h = kv * groups + r (repeat_kv's order), so the fold is a view.
    folded = query.reshape(batch, key.shape[1], groups, head_dim)  # [B, KV, groups, D]
    out = torch.nn.functional.scaled_dot_product_attention(
        folded, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling
    )  # [B, KV, groups, D]
    return out.reshape(batch, heads, 1, head_dim).transpose(1, 2).contiguous(), None  # [B, 1, H, D]


AttentionInterface.register(NAME, folded_gqa_sdpa)
AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
