"""Batch plumbing for the policy: which images belong to which prompt row, row selection, end masks.

Qwen-VL processors concatenate every image's patches into one ``pixel_values`` tensor, so
selecting or repeating prompt rows must move image blocks with them; these functions do that.

Left out on purpose: the model and the processor (``pebr_lit.policy.wrapper``, ``pebr_lit.data.collate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def images_per_row(prompts: dict[str, torch.Tensor], image_token_id: int, merge_size: int) -> list[int]:
    """How many images each prompt row holds, from its image placeholder tokens and the image grids."""
    if "image_grid_thw" not in prompts:
        return [0] * prompts["input_ids"].shape[0]
    tokens_per_image = (prompts["image_grid_thw"].prod(-1) // merge_size**2).tolist()  # [num_images]
    row_tokens = (prompts["input_ids"] == image_token_id).sum(dim=1).tolist()  # [B]
    counts, image = [], 0
    for needed in row_tokens:
        start = image
        while needed > 0 and image < len(tokens_per_image):
            needed -= tokens_per_image[image]
            image += 1
        if needed != 0:
            raise ValueError("image placeholder tokens do not match image_grid_thw; was the prompt truncated?")
        counts.append(image - start)
    return counts


def select_prompt_rows(
    prompts: dict[str, torch.Tensor], rows: Sequence[int], images_per_prompt: Sequence[int]
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Gather prompt rows ``rows`` (repeats allowed) with their images' patches.

    Returns the new batch and, for each image in it, the index of the source image in ``prompts``.
    ``images_per_prompt`` (see ``images_per_row``) says which image blocks belong to which row.
    """
    index = torch.tensor(list(rows), dtype=torch.long)
    out: dict[str, torch.Tensor] = {}
    order: list[int] = []
    if "image_grid_thw" in prompts:
        grid = prompts["image_grid_thw"]  # [num_images, 3]
        if sum(images_per_prompt) != grid.shape[0]:
            raise ValueError(
                f"images_per_prompt sums to {sum(images_per_prompt)} but the batch holds {grid.shape[0]} images."
            )
        firsts = [sum(images_per_prompt[:r]) for r in range(len(images_per_prompt))]
        order = [firsts[r] + k for r in rows for k in range(images_per_prompt[r])]
        # A selection of text-only rows carries no image keys at all: the vision tower fails on zero images.
        if order:
            blocks = prompts["pixel_values"].split(grid.prod(-1).tolist())  # per image [patches_i, D]
            out["pixel_values"] = torch.cat([blocks[j] for j in order])  # [patches in selection, D]
            out["image_grid_thw"] = grid[order]  # [images in selection, 3]
    for key, value in prompts.items():
        if key in ("pixel_values", "image_grid_thw"):
            continue
        if key not in out:
            out[key] = value[index.to(value.device)] if torch.is_tensor(value) and value.dim() >= 1 else value
    return out, order


def expand_prompts(
    prompts: dict[str, torch.Tensor], n: int, images_per_prompt: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
    """Repeat each prompt (with its images) ``n`` times, keeping row order ``i -> i // n``."""
    batch = prompts["input_ids"].shape[0]
    counts = (
        list(images_per_prompt) if images_per_prompt is not None else [1 if "image_grid_thw" in prompts else 0] * batch
    )
    return select_prompt_rows(prompts, [r for r in range(batch) for _ in range(n)], counts)[0]


def mask_after_eos(ids: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first end token of each row, 0 after it."""
    is_end = torch.isin(ids, torch.tensor(eos_ids, device=ids.device))  # [N, R]
    # Number of end tokens strictly before each position; positions with none are kept.
    before = torch.cumsum(is_end.long(), dim=1) - is_end.long()  # [N, R]
    return (before == 0).long()
