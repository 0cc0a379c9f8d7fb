"""Per-token log-probs (and entropy) of given responses under a vision-language model, in one forward.

Each response row answers one prompt row (repeats allowed); the prompts' images are encoded once and
their features shared by every row that answers them, and the log-softmax runs in fp32 over chunks of
rows so that a 150k vocabulary never needs an fp32 copy of the whole batch's logits. With a
``temperature`` T the distribution is ``softmax(logits / T)`` (the one rollouts sampled at T come
from), divided chunk by chunk in fp32; the entropy is that same distribution's.

With ``chunk_tokens`` set, no ``[N, R, V]`` logits exist at all: the forward stops at the final hidden
states (the LM head is handed zero positions), and the LM head, log-softmax and entropy run over chunks
of ``chunk_tokens`` response positions (padding skipped), each chunk recomputed in backward
(``policy.chunked_head``; ``torch.utils.checkpoint`` for heads that are not a plain ``nn.Linear``) so that only
one chunk's ``[chunk_tokens, V]`` fp32 logits are alive at a time.

Left out on purpose: which model scores (``PolicyWrapper.token_logprobs`` picks the policy's, a
reference callback passes its own) and sampling the responses (``PolicyWrapper.generate``).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from pebr_lit.policy.chunked_head import ChunkStats
from pebr_lit.policy.inputs import images_per_row, select_prompt_rows
from pebr_lit.policy.lora import unwrap


def token_logprobs(
    model: nn.Module,
    prompts: dict[str, torch.Tensor],
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    rows: list[int],
    with_entropy: bool = False,
    reuse_image_features: bool = True,
    chunk_rows: int = 4,
    temperature: float = 1.0,
    chunk_tokens: int | None = None,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logprobs [N, R], entropy [N, R] or None)`` of ``response_ids`` [N, R]; row ``i`` answers ``rows[i]``.

    Both are of ``softmax(logits / temperature)``, with no top-p truncation or renormalisation.
    Padding positions (``response_mask`` 0) get log-prob and entropy 0. ``chunk_tokens`` (null = logits of
    all rows, log-softmax over ``chunk_rows`` rows at a time) computes them from the hidden states instead,
    ``chunk_tokens`` response positions at a time. ``entropy_grad=False`` computes the entropy without autograd:
    on the logits path its graph would keep two fp32 ``[c, R, V]`` tensors alive through the whole backward when
    the loss never uses it (measured: ``docs/PERFORMANCE.md``).
    """
    if chunk_tokens is not None and chunk_tokens < 1:
        raise ValueError(f"token_logprobs: chunk_tokens={chunk_tokens!r} must be >= 1 (e.g. 256) or None.")
    inputs = _model_inputs(model, prompts, rows, reuse_image_features)
    resp_len = response_ids.shape[1]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], response_ids], dim=1)  # [N, P+R]
    inputs["attention_mask"] = torch.cat(
        [inputs["attention_mask"], response_mask.to(inputs["attention_mask"].dtype)], dim=1
    )
    if "mm_token_type_ids" in inputs:  # response tokens are text (type 0)
        zeros = torch.zeros_like(response_ids, dtype=inputs["mm_token_type_ids"].dtype)
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], zeros], dim=1)
    if chunk_tokens is not None:
        hidden, head = _final_hidden_states(model, inputs, resp_len + 1)
        return _chunked_over_positions(
            hidden[:, :-1], head, response_ids, response_mask, chunk_tokens, temperature, with_entropy
        )
    # Keep logits for the R positions that predict response tokens only: the prompt's logits are
    # never needed and a 150k vocabulary makes them the largest tensor of the step.
    logits = model(**inputs, use_cache=False, logits_to_keep=resp_len + 1).logits[:, :-1]  # [N, R, V]
    logprobs, entropies = [], []
    for start in range(0, logits.shape[0], chunk_rows):  # fp32 log-softmax chunked over rows
        chunk = logits[start : start + chunk_rows].float()  # [c, R, V]
        if temperature != 1.0:  # out of place: fp32 logits come back from .float() uncopied
            chunk = chunk / temperature  # [c, R, V]
        logp = chunk.log_softmax(-1)  # [c, R, V]
        ids = response_ids[start : start + chunk_rows]
        logprobs.append(logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1))  # [c, R]
        if with_entropy:
            with torch.set_grad_enabled(torch.is_grad_enabled() and entropy_grad):
                entropies.append(-(logp.exp() * logp).sum(-1))  # [c, R]
    keep = response_mask.bool()  # [N, R]
    out = torch.where(keep, torch.cat(logprobs), 0.0)  # [N, R]
    ent = torch.where(keep, torch.cat(entropies), 0.0) if with_entropy else None
    return out, ent


def _model_inputs(
    model: nn.Module, prompts: dict[str, torch.Tensor], rows: list[int], reuse_image_features: bool
) -> dict[str, Any]:
    """Model inputs for prompt rows ``rows`` (repeats allowed), images included."""
    config = model.config
    counts = images_per_row(prompts, config.image_token_id, config.vision_config.spatial_merge_size)
    inputs, order = select_prompt_rows(prompts, rows, counts)
    hf_model = unwrap(model)
    supports = "mm_encoder_outputs" in inspect.signature(hf_model.forward).parameters
    if reuse_image_features and order and supports:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        # Encode only the images these rows use, once each: the prompts hold a whole rollout round's images,
        # and encoding all of them for every micro-batch costs the whole round's vision activations each time.
        needed = sorted(set(order))
        grid = prompts["image_grid_thw"]  # [num_images, 3]
        blocks = prompts["pixel_values"].split(grid.prod(-1).tolist())  # per image [patches_i, D]
        pixels = torch.cat([blocks[j] for j in needed])  # [patches of the needed images, D]
        features = hf_model.get_image_features(pixels, grid[needed], return_dict=True)
        per_image = dict(zip(needed, features.pooler_output))  # source image -> [tokens_i, D]
        del inputs["pixel_values"]
        inputs["mm_encoder_outputs"] = {
            "image": BaseModelOutputWithPooling(pooler_output=tuple(per_image[j] for j in order))
        }
    return inputs


def _final_hidden_states(model: nn.Module, inputs: dict[str, Any], keep: int) -> tuple[torch.Tensor, nn.Module]:
    """``(hidden [N, keep, D], lm_head)``: the LM head's input at the last ``keep`` positions, its output never built.

    The model's own forward runs (image features, ``mm_encoder_outputs``, rope and adapters as always);
    a pre-hook on the output embedding takes its input and hands it zero positions, so the forward
    returns ``[N, 0, V]`` logits.
    """
    from pebr_lit.policy.fsdp import is_sharded

    if is_sharded(model):  # the LM head's weight is gathered only inside the root module's forward
        raise NotImplementedError(
            "token_logprobs: chunk_tokens under FSDP is not supported (the LM head is applied outside the "
            "model's forward). Set policy.logprob_chunk_tokens: null for sharded runs."
        )
    head = unwrap(model).get_output_embeddings()
    taken: dict[str, torch.Tensor] = {}

    def take(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        taken["hidden"] = args[0]  # [N, keep, D], after the final norm
        return (args[0][:, :0], *args[1:])  # [N, 0, D]

    handle = head.register_forward_pre_hook(take)
    try:
        model(**inputs, use_cache=False, logits_to_keep=keep)
    finally:
        handle.remove()
    return taken["hidden"], head


def _chunked_over_positions(
    hidden: torch.Tensor,
    head: nn.Module,
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    chunk_tokens: int,
    temperature: float,
    with_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and entropy) ``[N, R]`` from ``hidden`` [N, R, D], ``chunk_tokens`` kept positions at a time."""
    keep = response_mask.bool()  # [N, R]
    flat, ids = hidden[keep], response_ids[keep]  # [K, D], [K]: padding never reaches the LM head
    track = torch.is_grad_enabled() and (flat.requires_grad or any(p.requires_grad for p in head.parameters()))
    plain = type(head) is nn.Linear  # adapters and 4-bit heads keep per-chunk checkpointing
    logprobs, entropies = [], []
    for start in range(0, flat.shape[0], chunk_tokens):
        h, y = flat[start : start + chunk_tokens], ids[start : start + chunk_tokens]  # [c, D], [c]
        if track and plain:  # logits recomputed in backward, one chunk at a time (policy.chunked_head)
            lp, ent = ChunkStats.apply(h, head.weight, head.bias, y, temperature, with_entropy)
        elif track:
            lp, ent = checkpoint(_chunk_stats, h, y, head, temperature, with_entropy, use_reentrant=False)
        else:
            lp, ent = _chunk_stats(h, y, head, temperature, with_entropy)
        logprobs.append(lp)
        entropies.append(ent)
    out = _scatter(keep, logprobs)
    return out, (_scatter(keep, entropies) if with_entropy else None)


def _scatter(keep: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
    """``[N, R]`` fp32 with the concatenated ``parts`` at the ``keep`` positions (row-major) and 0 elsewhere."""
    out = torch.zeros(keep.shape, dtype=torch.float32, device=keep.device)  # [N, R]
    return out.masked_scatter(keep, torch.cat(parts).float()) if parts else out


def _chunk_stats(
    hidden: torch.Tensor, ids: torch.Tensor, head: nn.Module, temperature: float, with_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log-prob [c], entropy [c] or None)`` of ``ids`` [c] from ``hidden`` [c, D] under softmax(head(h) / T)."""
    logits = head(hidden).float()  # [c, V]
    if temperature != 1.0:
        logits = logits / temperature  # [c, V]
    logp = logits.log_softmax(-1)  # [c, V]
    token = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # [c]
    return token, (-(logp.exp() * logp).sum(-1) if with_entropy else None)  # [c], [c]
