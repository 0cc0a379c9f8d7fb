"""CLIP loading: turn a local directory, an open_clip schema string or a built-in name into a model in eval mode.

The one way the project loads an open_clip model: the tiny CLIP (``demo.tiny_clip``) and real checkpoints
go through ``load_clip`` alike, so tests exercise the same path as real runs.

Left out on purpose: scoring images against texts, building models, and downloading anything itself
(a ``pretrained`` tag or an ``hf-hub:`` name is passed straight to open_clip). A value that looks like a
local path but does not exist is a ``ConfigError``, never taken for an open_clip model name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pebr_lit.errors import ConfigError

#: open_clip schema prefixes: what follows may hold "/" without being a local path.
SCHEMAS = ("hf-hub:", "local-dir:")


def looks_like_path(value: str) -> bool:
    """True for a value meant as a local path: ``./``, ``/``, ``~`` or a separator (open_clip names have none)."""
    if value.startswith(SCHEMAS):
        return False
    return value.startswith((".", "/", "~")) or "/" in value or "\\" in value


def check_local_source(value: str, setting: str) -> None:
    """``ConfigError`` when ``value`` looks like a path (``looks_like_path``) but no such file or directory exists.

    Hub ids (``owner/name``) look like paths too: for those scorers (FG-CLIP, HF CLIP) this check is not run on a
    value whose parent folder is missing and that has exactly one ``/`` (``remote_code.is_local`` decides there).
    """
    if not looks_like_path(value) or Path(value).expanduser().exists():
        return
    if not setting.startswith("ClipScorer.") and value.count("/") == 1 and not value.startswith((".", "/", "~")):
        if not Path(value).parent.is_dir():
            return  # a hub id such as qihoo360/fg-clip-large
    raise ConfigError(
        f"{setting}={value!r}: no such directory. Give the directory of a saved CLIP model (the demo's is built by "
        "`python -m pebr_lit.demo.tiny --out DIR` as DIR/clip, or trained by `python -m pebr_lit.clip.train`)."
    )


def load_clip(
    path_or_name: str | Path, pretrained: str | None = None, device: str = "cpu", setting: str = "ClipScorer.model"
) -> tuple[Any, Any, Any]:
    """Load an open_clip model in eval mode: ``(model, preprocess, tokenizer)``.

    Args:
        path_or_name: a directory holding ``open_clip_config.json`` (as ``build_tiny_clip`` writes),
            an open_clip schema string (``local-dir:...``, ``hf-hub:...``), or a built-in model name
            such as ``ViT-B-32``.
        pretrained: weights for a built-in name: an open_clip tag (downloads) or a checkpoint file;
            ``None`` gives random weights. Not allowed with a directory, which holds its own weights.
        device: torch device for the model.
        setting: the config field ``path_or_name`` came from, named in errors (``pretrained`` is its sibling).
    """
    import open_clip

    name = str(path_or_name)
    check_local_source(name, setting)  # a missing directory is not an open_clip model name
    if pretrained is not None:
        check_local_source(pretrained, setting.rsplit(".", 1)[0] + ".pretrained")
    if Path(name).is_dir():
        if not (Path(name) / "open_clip_config.json").is_file():
            raise ConfigError(
                f"{setting}={name!r} has no open_clip_config.json. Give a directory written by "
                "`python -m pebr_lit.demo.tiny --out DIR` (DIR/clip) or `python -m pebr_lit.clip.train`, "
                "or an open_clip model name."
            )
        if pretrained is not None:
            raise ValueError(
                f"load_clip: pretrained={pretrained!r} given with directory {name}, "
                "which holds its own weights; drop it."
            )
        name = f"local-dir:{Path(name).resolve()}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)
