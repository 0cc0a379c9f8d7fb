"""Per-token log-probs (and entropy) of given responses under a vision-language model, in one forward.

Each response row answers one prompt row (repeats allowed); the prompts' images are encoded once and
their features shared by every row that answers them, and the log-softmax runs in fp32 over chunks of
rows so that a 150k vocabulary never needs an fp32 copy of the whole batch's logits. With a
``temperature`` T the distribution is ``softmax(logits / T)`` (the one rollouts sampled at T come
from), divided chunk by chunk in fp32; the entropy is that same distribution's.

Left out on purpose: which model scores (``PolicyWrapper.token_logprobs`` picks the policy's, a
reference callback passes its own) and sampling the responses (``PolicyWrapper.generate``).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logprobs [N, R], entropy [N, R] or None)`` of ``response_ids`` [N, R]; row ``i`` answers ``rows[i]``.

    Both are of ``softmax(logits / temperature)``, with no top-p truncation or renormalisation.
    Padding positions (``response_mask`` 0) get log-prob and entropy 0.
    """
    inputs = _model_inputs(model, prompts, rows, reuse_image_features)
    resp_len = response_ids.shape[1]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], response_ids], dim=1)  # [N, P+R]
    inputs["attention_mask"] = torch.cat(
        [inputs["attention_mask"], response_mask.to(inputs["attention_mask"].dtype)], dim=1
    )
    if "mm_token_type_ids" in inputs:  # response tokens are text (type 0)
        zeros = torch.zeros_like(response_ids, dtype=inputs["mm_token_type_ids"].dtype)
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], zeros], dim=1)
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
