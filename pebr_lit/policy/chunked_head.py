"""One LM-head chunk's token log-prob and entropy as an autograd function that recomputes its logits in backward.

``ChunkStats.apply(hidden [c, D], weight [V, D], bias [V] or None, ids [c], temperature, with_entropy)`` returns
``(log-prob [c], entropy [c])`` of ``softmax((hidden @ weight.T + bias) / T)`` and keeps only its inputs for
backward. Its backward recomputes the chunk's fp32 logits and writes the gradient with respect to them in closed
form, ``dlogp_y/dz = onehot(y) - p`` and ``dH/dz = -p * (log p + H)`` (divided by T), so one chunk holds about
three ``[c, V]`` fp32 tensors at a time, in forward and in backward alike.

Why not ``torch.utils.checkpoint`` per chunk: measured on CPU (``benchmarks/real_shape.py``, 1 x 2,048 positions,
V 151,936, 8 chunks of 256), autograd recomputed every chunk before freeing any, and the backward held 6.4 GB of
fp32 chunks at once — the whole logits the chunking was meant to avoid.

The matrix product runs in autocast's dtype when autocast is on for the weight's device (as ``nn.Linear`` would),
else in the weight's dtype; the softmax statistics are fp32.

Left out on purpose: heads that are not a plain ``nn.Linear`` (adapters, 4-bit layers: ``policy.logprobs`` keeps
per-chunk checkpointing for them) and choosing the positions (``policy.logprobs``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    device = weight.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


def _logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """``[c, V]`` logits in fp32 (fp64 for fp64 inputs), the product in ``dtype``."""
    b = bias.to(dtype) if bias is not None else None
    with torch.autocast(weight.device.type, enabled=False):
        logits = F.linear(hidden.to(dtype), weight.to(dtype), b)  # [c, V]
    return logits.to(torch.promote_types(dtype, torch.float32))


class ChunkStats(torch.autograd.Function):
    """Token log-prob and entropy of one chunk of positions; logits recomputed in backward (see the module)."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        ids: torch.Tensor,
        temperature: float,
        with_entropy: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = _compute_dtype(weight)
        logp = (_logits(hidden, weight, bias, dtype) / temperature).log_softmax(-1)  # [c, V]
        token = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # [c]
        entropy = -(logp.exp() * logp).sum(-1) if with_entropy else torch.zeros_like(token)  # [c]
        ctx.save_for_backward(hidden, weight, bias, ids)
        ctx.temperature, ctx.dtype, ctx.with_entropy = temperature, dtype, with_entropy
        return token, entropy

    @staticmethod
    def backward(ctx: Any, grad_token: torch.Tensor, grad_entropy: torch.Tensor) -> tuple[Any, ...]:
        hidden, weight, bias, ids = ctx.saved_tensors
        t = ctx.temperature
        logp = (_logits(hidden, weight, bias, ctx.dtype) / t).log_softmax(-1)  # [c, V]
        g_tok = grad_token.to(logp.dtype).unsqueeze(-1)  # [c, 1]
        grad = logp.exp()  # [c, V]: p, turned in place into d(loss)/d(logits / T)
        if ctx.with_entropy:
            entropy = -(grad * logp).sum(-1, keepdim=True)  # [c, 1]
            logp.add_(entropy)  # [c, V]: log p + H
            grad.mul_(logp.mul_(-grad_entropy.to(logp.dtype).unsqueeze(-1)) - g_tok)  # -p (g_H (log p + H) + g)
        else:
            grad.mul_(-g_tok)  # [c, V]: -g p
        del logp
        grad.scatter_add_(-1, ids.unsqueeze(-1), g_tok)  # + g onehot(y)
        if t != 1.0:
            grad.div_(t)
        g = grad.to(ctx.dtype)  # [c, V]
        grad_hidden = (g @ weight.to(ctx.dtype)).to(hidden.dtype) if ctx.needs_input_grad[0] else None  # [c, D]
        grad_weight = (g.t() @ hidden.to(ctx.dtype)).to(weight.dtype) if ctx.needs_input_grad[1] else None
        grad_bias = g.sum(0).to(bias.dtype) if bias is not None and ctx.needs_input_grad[2] else None
        return grad_hidden, grad_weight, grad_bias, None, None, None
