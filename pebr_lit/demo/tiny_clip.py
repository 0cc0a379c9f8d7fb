"""Tiny CLIP: build a random ~1.7 M-parameter open_clip model, saved in open_clip's ``local-dir:`` layout.

The directory it writes loads through the same path as a real checkpoint directory
(``clip.loading.load_clip``). Sizes suit the synthetic world's 112 x 112 images.

Left out on purpose: loading (``clip.loading``), training (the weights stay random, so its scores are
noise until someone trains it), and the VLM/tokenizer assets (``demo.tiny``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def build_tiny_clip(
    out_dir: str | Path,
    seed: int = 0,
    embed_dim: int = 64,
    image_size: int = 112,
    patch: int = 14,
    vision_width: int = 64,
    vision_layers: int = 2,
    text_width: int = 32,
    text_layers: int = 2,
) -> Path:
    """Save a random open_clip ``CLIP`` as ``open_clip_config.json`` + ``open_clip_model.safetensors``.

    This is the layout open_clip reads with ``local-dir:<dir>`` (and pushes to the HF Hub). The text
    tower keeps open_clip's built-in tokenizer (49,408 tokens, no download), which is most of the
    ~1.7 M parameters.

    Args:
        out_dir: directory to write (created).
        seed: torch seed for the weights (the global RNG state is left untouched).
        embed_dim: width of the joint image-text space.
        image_size: input side in pixels.
        patch: pixels per patch side.
        vision_width: vision transformer width (heads of 32 channels).
        vision_layers: vision transformer blocks.
        text_width: text transformer width (heads of 16 channels).
        text_layers: text transformer blocks.
    """
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from safetensors.torch import save_file

    model_cfg = {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": image_size,
            "patch_size": patch,
            "layers": vision_layers,
            "width": vision_width,
            "head_width": 32,
            "mlp_ratio": 2.0,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "layers": text_layers,
            "width": text_width,
            "heads": max(1, text_width // 16),
            "mlp_ratio": 2.0,
        },
    }
    preprocess_cfg = {
        "mean": list(OPENAI_DATASET_MEAN),
        "std": list(OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**model_cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    return out
