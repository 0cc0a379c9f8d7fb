"""Model shapes of a Qwen2-VL / Qwen2.5-VL checkpoint (its config.json or a shipped table) and parameter counts.

``model_shapes(name_or_path)`` reads ``<dir>/config.json`` when given a local directory (text fields at the
top level, as Qwen2-VL and transformers 4 write them, or under ``text_config``, as transformers 5 does; the
vision tower under ``vision_config``), else looks the hub id up in ``SHAPES``. The parameter counts follow
the Hugging Face modules (``modeling_qwen2_5_vl`` / ``modeling_qwen2_vl``) term by term, so a test can check
them against a model built on the meta device.

Left out on purpose: downloading anything (a hub id not in the table is an error that says what to do),
and what the shapes cost in memory (``plan.estimate``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VisionShapes:
    """The vision tower (ViT + patch merger).

    Args:
        depth: Transformer blocks.
        hidden: Block width (Qwen2-VL's ``embed_dim``).
        intermediate: MLP width (Qwen2-VL: ``embed_dim * mlp_ratio``).
        heads: Attention heads.
        out_hidden: Merger output width (the language model's hidden size).
        patch: Patch side in pixels.
        merge: Spatial merge size (merge x merge patches -> one language-model token).
        temporal_patch: Frames per patch (an image is repeated to fill them).
        in_channels: Image channels.
        gated_mlp: SwiGLU MLP with RMSNorm (Qwen2.5-VL) rather than fc1/fc2 with LayerNorm (Qwen2-VL).
    """

    depth: int
    hidden: int
    intermediate: int
    heads: int
    out_hidden: int
    patch: int = 14
    merge: int = 2
    temporal_patch: int = 2
    in_channels: int = 3
    gated_mlp: bool = True

    def block_params(self) -> int:
        """One ViT block: qkv and proj with biases, the MLP with biases, two norms (LayerNorm: weight + bias)."""
        h, i = self.hidden, self.intermediate
        attn = h * 3 * h + 3 * h + h * h + h
        mlp = 2 * (h * i + i) + i * h + h if self.gated_mlp else h * i + i + i * h + h
        norms = 2 * h if self.gated_mlp else 4 * h
        return attn + mlp + norms

    def patch_embed_params(self) -> int:
        """The Conv3d patch embedding (no bias)."""
        return self.in_channels * self.temporal_patch * self.patch**2 * self.hidden

    def merger_params(self) -> int:
        """The patch merger: a norm over ``hidden``, then Linear(h*m^2, h*m^2) -> GELU -> Linear(h*m^2, out)."""
        wide = self.hidden * self.merge**2
        norm = self.hidden if self.gated_mlp else 2 * self.hidden
        return norm + wide * wide + wide + wide * self.out_hidden + self.out_hidden

    def params(self) -> int:
        return self.depth * self.block_params() + self.patch_embed_params() + self.merger_params()


@dataclass(frozen=True)
class ModelShapes:
    """A Qwen2-style language model with its vision tower.

    Args:
        layers: Decoder layers.
        hidden: Hidden size.
        intermediate: MLP width.
        heads: Attention heads.
        kv_heads: Key/value heads (grouped-query attention).
        vocab: Vocabulary size (embedding and LM-head rows).
        tied: LM head shares the embedding matrix.
        vision: The vision tower.
        head_dim: Per-head width; 0 = hidden / heads.
    """

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    vision: VisionShapes
    head_dim: int = 0

    @property
    def dim(self) -> int:
        """Per-head width."""
        return self.head_dim or self.hidden // self.heads

    def layer_linear_params(self) -> int:
        """Weights (and q/k/v biases) of one decoder layer's seven linears: what 4-bit quantises and LoRA targets."""
        h, q, kv, i = self.hidden, self.heads * self.dim, self.kv_heads * self.dim, self.intermediate
        return h * q + q + 2 * (h * kv + kv) + q * h + 3 * h * i

    def layer_params(self) -> int:
        return self.layer_linear_params() + 2 * self.hidden  # + input and post-attention RMSNorm

    def embedding_params(self) -> int:
        """Embedding plus LM head (one matrix when tied): kept in bf16 under 4-bit quantisation."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def text_params(self) -> int:
        return self.layers * self.layer_params() + self.embedding_params() + self.hidden  # + final norm

    def params(self) -> int:
        return self.text_params() + self.vision.params()


def _vision(depth: int = 32, out_hidden: int = 3584, qwen2: bool = False) -> VisionShapes:
    if qwen2:  # Qwen2-VL: embed_dim 1280, mlp_ratio 4, LayerNorm, QuickGELU fc1/fc2
        return VisionShapes(depth, 1280, 5120, 16, out_hidden, gated_mlp=False)
    return VisionShapes(depth, 1280, 3420, 16, out_hidden)


#: Published architectures, keyed by hub id (the -Instruct and base checkpoints share them). Source: each
#: model's config.json on the Hugging Face hub (Qwen/Qwen2-VL-{2B,7B}-Instruct, Qwen/Qwen2.5-VL-{3B,7B,32B,72B}-
#: Instruct), as transcribed here; transformers' Qwen2_5_VLTextConfig() defaults are the 72B's text model, and
#: its Qwen2_5_VLVisionConfig() defaults match the published vision tower except hidden_size (3584 there,
#: 1280 in every published checkpoint). Read a local config.json instead whenever you have one.
SHAPES: dict[str, ModelShapes] = {
    "Qwen/Qwen2-VL-2B-Instruct": ModelShapes(28, 1536, 8960, 12, 2, 151936, True, _vision(out_hidden=1536, qwen2=True)),
    "Qwen/Qwen2-VL-7B-Instruct": ModelShapes(28, 3584, 18944, 28, 4, 152064, False, _vision(qwen2=True)),
    "Qwen/Qwen2.5-VL-3B-Instruct": ModelShapes(36, 2048, 11008, 16, 2, 151936, True, _vision(out_hidden=2048)),
    "Qwen/Qwen2.5-VL-7B-Instruct": ModelShapes(28, 3584, 18944, 28, 4, 152064, False, _vision()),
    "Qwen/Qwen2.5-VL-32B-Instruct": ModelShapes(64, 5120, 27648, 40, 8, 152064, False, _vision(out_hidden=5120)),
    "Qwen/Qwen2.5-VL-72B-Instruct": ModelShapes(80, 8192, 29568, 64, 8, 152064, False, _vision(out_hidden=8192)),
}
for _id in list(SHAPES):  # the base (non-Instruct) checkpoints have the same architecture
    SHAPES[_id.removesuffix("-Instruct")] = SHAPES[_id]


def shapes_from_config(config: dict[str, Any]) -> ModelShapes:
    """Shapes from a parsed Qwen2-VL / Qwen2.5-VL ``config.json`` (text fields top-level or under ``text_config``)."""
    text = {**config, **(config.get("text_config") or {})}
    vision = config.get("vision_config") or {}
    try:
        qwen2 = "embed_dim" in vision  # Qwen2-VL names the ViT width embed_dim and its output hidden_size
        width = vision["embed_dim"] if qwen2 else vision["hidden_size"]
        tower = VisionShapes(
            depth=vision["depth"],
            hidden=width,
            intermediate=width * vision.get("mlp_ratio", 4) if qwen2 else vision["intermediate_size"],
            heads=vision["num_heads"],
            out_hidden=vision["hidden_size"] if qwen2 else vision.get("out_hidden_size", text["hidden_size"]),
            patch=vision.get("patch_size", vision.get("spatial_patch_size", 14)),
            merge=vision.get("spatial_merge_size", 2),
            temporal_patch=vision.get("temporal_patch_size", 2),
            in_channels=vision.get("in_channels", vision.get("in_chans", 3)),
            gated_mlp=not qwen2,
        )
        return ModelShapes(
            layers=text["num_hidden_layers"],
            hidden=text["hidden_size"],
            intermediate=text["intermediate_size"],
            heads=text["num_attention_heads"],
            kv_heads=text.get("num_key_value_heads", text["num_attention_heads"]),
            vocab=text["vocab_size"],
            tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
            vision=tower,
            head_dim=text.get("head_dim") or 0,
        )
    except KeyError as err:
        raise ValueError(
            f"config.json: no {err.args[0]!r} (looked at the top level, text_config and vision_config). "
            "Give a Qwen2-VL / Qwen2.5-VL checkpoint's config.json."
        ) from err


def model_shapes(name_or_path: str) -> ModelShapes:
    """Shapes of a local checkpoint directory (its config.json) or a hub id in ``SHAPES``; never downloads."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file}: not found. Point model_name_or_path at a saved checkpoint.")
        return shapes_from_config(json.loads(config_file.read_text()))
    if name_or_path in SHAPES:
        return SHAPES[name_or_path]
    raise ValueError(
        f"model_name_or_path={name_or_path!r}: neither a local directory nor a hub id the planner knows "
        f"({', '.join(k for k in SHAPES if k.endswith('-Instruct'))}). Download the checkpoint and give its directory."
    )
