"""CLIP loading: turn a local directory, an open_clip schema string or a built-in name into a model in eval mode.

The one way the project loads an open_clip model: the tiny CLIP (``demo.tiny_clip``) and real checkpoints
go through ``load_clip`` alike, so tests exercise the same path as real runs.

Left out on purpose: scoring images against texts, building models, and downloading anything itself
(a ``pretrained`` tag or an ``hf-hub:`` name is passed straight to open_clip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_clip(path_or_name: str | Path, pretrained: str | None = None, device: str = "cpu") -> tuple[Any, Any, Any]:
    """Load an open_clip model in eval mode: ``(model, preprocess, tokenizer)``.

    Args:
        path_or_name: a directory holding ``open_clip_config.json`` (as ``build_tiny_clip`` writes),
            an open_clip schema string (``local-dir:...``, ``hf-hub:...``), or a built-in model name
            such as ``ViT-B-32``.
        pretrained: weights for a built-in name: an open_clip tag (downloads) or a checkpoint file;
            ``None`` gives random weights. Not allowed with a directory, which holds its own weights.
        device: torch device for the model.
    """
    import open_clip

    name = str(path_or_name)
    if Path(name).is_dir():
        if not (Path(name) / "open_clip_config.json").is_file():
            raise FileNotFoundError(
                f"load_clip: {name} has no open_clip_config.json; build one with "
                "`python -m pebr_lit.demo.tiny --out DIR` or pass an open_clip model name."
            )
        if pretrained is not None:
            raise ValueError(
                f"load_clip: pretrained={pretrained!r} given with directory {name}, "
                "which holds its own weights; drop it."
            )
        name = f"local-dir:{Path(name).resolve()}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)
