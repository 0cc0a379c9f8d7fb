"""A random Qwen2.5-VL at a published architecture, and its offline processor: what the real-shape benchmarks build.

``qwen2_5_vl_config`` turns the planner's shape table (``pebr_lit.plan.shapes``, one place for the published
sizes; transformers' own ``Qwen2_5_VLConfig()`` defaults are not any released checkpoint) into a
``Qwen2_5_VLConfig``, with the demo tokenizer's special-token ids; ``offline_processor`` builds the matching
processor without the hub (images up to ``MAX_PIXELS``, so 896x896 gives 1,024 image tokens).

Left out on purpose: initialising, saving and measuring the model (each benchmark does its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pebr_lit.plan.shapes import ModelShapes

MAX_PIXELS = 802816  # 1024 * 28 * 28: the authors' RL image budget, 1,024 image tokens
#: The vision blocks with full (not windowed) attention in every released Qwen2.5-VL.
FULL_ATTENTION_BLOCKS = (7, 15, 23, 31)


def qwen2_5_vl_config(shapes: ModelShapes, tokenizer: Any, full_attention_blocks: Sequence[int] | None = None) -> Any:
    """``Qwen2_5_VLConfig`` of ``shapes`` (depths as given: cut them with ``dataclasses.replace``).

    ``full_attention_blocks`` defaults to the released ones that the vision depth keeps.
    """
    from transformers import Qwen2_5_VLConfig

    from pebr_lit.demo.tiny import SPECIAL_TOKENS, _mrope_section

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    v = shapes.vision
    if full_attention_blocks is None:
        full_attention_blocks = [i for i in FULL_ATTENTION_BLOCKS if i < v.depth]
    text = dict(
        vocab_size=shapes.vocab,
        hidden_size=shapes.hidden,
        intermediate_size=shapes.intermediate,
        num_hidden_layers=shapes.layers,
        num_attention_heads=shapes.heads,
        num_key_value_heads=shapes.kv_heads,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        tie_word_embeddings=shapes.tied,
        # [16, 24, 24] at the released head width 128
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope_section(shapes.dim)},
        bos_token_id=eot,
        eos_token_id=im_end,
        pad_token_id=eot,
    )
    vision = dict(
        depth=v.depth,
        hidden_size=v.hidden,
        intermediate_size=v.intermediate,
        num_heads=v.heads,
        out_hidden_size=v.out_hidden,
        patch_size=v.patch,
        spatial_merge_size=v.merge,
        temporal_patch_size=v.temporal_patch,
        window_size=112,
        fullatt_block_indexes=list(full_attention_blocks),
        tokens_per_second=2,
        hidden_act="silu",
    )
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=shapes.tied,
    )


def offline_processor(tokenizer: Any) -> Any:
    """A ``Qwen2_5_VLProcessor`` with ``tokenizer`` and the released image settings, capped at ``MAX_PIXELS``."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from pebr_lit.demo.tiny import CHAT_TEMPLATE

    image = dict(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=56 * 56, max_pixels=MAX_PIXELS)
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**image),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**image),
        chat_template=CHAT_TEMPLATE,
    )
