"""A contiguous input for the LM head, so that its ``linear`` never materialises an expanded copy of the head's weight.

Hugging Face's causal-LM heads apply ``lm_head(hidden[:, -k:, :])``: with more than one row that slice is not
contiguous, and when the head's weight needs no gradient (LoRA and QLoRA freeze it) ``F.linear`` takes
``matmul``'s batched route, expanding the ``[V, D]`` weight to
``[N, D, V]`` for ``bmm``. On CPU that ``bmm`` copies the expansion: a Qwen2.5-VL-7B head (152,064 x 3,584, bf16)
costs **N x 1.09 GB** for a few milliseconds, in every log-prob pass and every ``generate`` prefill, and on this
project's CPU rehearsal it was the largest tensor of the no-grad log-prob pass (``docs/PERFORMANCE.md``). A copy of
the ``[N, k, D]`` slice (N x k x D x 2 bytes, 1.8 MB per row at k = 257) lets ``linear`` fold the rows into one
``mm`` instead, with the same result.

Left out on purpose: which positions are kept (``logits_to_keep``, the callers'), and GPUs' ``bmm``, which reads a
stride-0 batch without copying (the hook is harmless there: one small copy).
"""

from __future__ import annotations

from typing import Any

from torch import nn


def _contiguous(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if args and hasattr(args[0], "is_contiguous") and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


def contiguous_head_input(model: nn.Module) -> None:
    """Make ``model``'s output embedding (its LM head) receive a contiguous input (a forward pre-hook)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, nn.Module):
        head.register_forward_pre_hook(_contiguous)
