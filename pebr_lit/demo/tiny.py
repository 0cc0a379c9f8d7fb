"""Tiny stand-in assets, built offline from a seed: a BPE tokenizer, a ~0.6 M-parameter Qwen2.5-VL, a tiny CLIP.

They let the whole recipe run on CPU and in tests with the same loading code as real checkpoints:
the VLM directory loads with ``AutoModelForImageTextToText``/``AutoProcessor``, the CLIP directory
with open_clip's own ``local-dir:`` schema (``clip.loading.load_clip``). Model sizes: text 128 x 2
layers (docs/demo.md, "The tiny model"), vision 64 x 2 blocks, 16 image tokens for a 112 x 112 image).

Left out on purpose: the CLIP itself (``demo.tiny_clip.build_tiny_clip``) and CLIP loading
(``clip.loading.load_clip``); training anything (SFT trains the VLM; the tiny
CLIP stays random, so its scores are noise until someone trains it); downloading real checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from pebr_lit.clip.loading import load_clip
from pebr_lit.demo.tiny_clip import build_tiny_clip

#: Qwen2.5-VL's special tokens; ``<|endoftext|>`` pads, ``<|im_end|>`` ends a turn (the EOS).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Tokens that must never be sampled: a generated ``<|image_pad|>`` makes the next forward pass with
#: ``pixel_values`` fail ("Image features and image tokens do not match").
SUPPRESSED_TOKENS: tuple[str, ...] = (
    "<|im_start|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen's chat layout without its default system prompt (~20 tokens per sample with this 512-token
# vocabulary, against ~100 for the rest of a prompt). The assistant text starts right after
# "<|im_start|>assistant\n", so the ids of the prompt rendered with add_generation_prompt=True are a
# prefix of the full chat's ids.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split: digits one by one (answers are small numbers), newlines apart.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
MAX_LENGTH = 2048  # tokens; the tiny model's position budget and the tokenizer's model_max_length
ASSETS_FORMAT = 1  # bump when build_assets would produce different files for the same arguments


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """Train a byte-level BPE on ``texts`` and wrap it as a Qwen-style ``PreTrainedTokenizerFast``.

    Args:
        texts: training texts (user turns and responses); every byte stays encodable regardless.
        vocab_size: upper bound on the vocabulary, special tokens and the 256 bytes included; a small
            corpus may yield fewer tokens, so size models with ``len(tokenizer)``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    floor = len(SPECIAL_TOKENS) + 256
    if vocab_size < floor:
        raise ValueError(f"build_tokenizer: vocab_size={vocab_size} is below {floor} (specials + 256 bytes); raise it.")
    seen = 0

    def with_roles() -> Iterator[str]:
        # Chat-rendered data repeats the role names once per sample; without them "assistant" would
        # cost 9 byte tokens in every prompt.
        nonlocal seen
        for text in texts:
            seen += 1
            yield text
            yield "system\nuser\nassistant\n"

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),  # ids 0..6, in SPECIAL_TOKENS order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(with_roles(), trainer)
    if seen == 0:
        raise ValueError("build_tokenizer: no texts given; pass the corpus the model will see.")
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_LENGTH,
    )


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) as Qwen2.5-VL does (16:24:24)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def build_tiny_vlm(
    out_dir: str | Path,
    tokenizer: Any,
    seed: int = 0,
    text_hidden: int = 128,
    text_layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    ffn: int = 256,
    vision_hidden: int = 64,
    vision_depth: int = 2,
    vision_heads: int = 4,
    vision_ffn: int = 128,
    patch: int = 14,
    merge: int = 2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
    rope_theta: float = 10000.0,
) -> Path:
    """Save a randomly initialised Qwen2.5-VL and its processor to ``out_dir``; returns ``out_dir``.

    Args:
        out_dir: directory for ``save_pretrained`` (created; existing files are overwritten).
        tokenizer: from ``build_tokenizer``; the vocabulary is ``len(tokenizer)``.
        seed: torch seed for the weights (the global RNG state is left untouched).
        text_hidden: language-model width.
        text_layers: language-model decoder layers.
        heads: attention heads; the head size ``text_hidden / heads`` must be even and at least 8 (rotary).
        kv_heads: key/value heads (grouped-query attention); must divide ``heads``.
        ffn: language-model MLP width.
        vision_hidden: vision-tower width.
        vision_depth: vision-tower blocks (the last one uses full attention).
        vision_heads: vision attention heads; ``vision_hidden / vision_heads`` must be a multiple of 4.
        vision_ffn: vision MLP width.
        patch: pixels per patch side.
        merge: patches merged per side into one language token (2 -> 4 patches per token).
        min_pixels: smaller images are upscaled to about this area.
        max_pixels: larger images are downscaled to at most this area; 112*112 caps an image at
            (112/14)^2 / 2^2 = 16 tokens.
        rope_theta: rotary base of the language model.
    """
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    head_dim, vision_head_dim = text_hidden // heads, vision_hidden // vision_heads
    if text_hidden % heads or head_dim % 2 or head_dim < 8:
        raise ValueError(
            f"build_tiny_vlm: the head size text_hidden/heads = {text_hidden}/{heads} must be a whole even number >= 8."
        )
    if heads % kv_heads:
        raise ValueError(f"build_tiny_vlm: kv_heads={kv_heads} must divide heads={heads}.")
    if vision_hidden % vision_heads or vision_head_dim % 4:
        raise ValueError(
            f"build_tiny_vlm: the head size vision_hidden/vision_heads = {vision_hidden}/{vision_heads} "
            "must be a whole multiple of 4."
        )
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    if any(i is None or i == tokenizer.unk_token_id for i in ids.values()):
        raise ValueError(f"build_tiny_vlm: the tokenizer lacks some of {SPECIAL_TOKENS}; use build_tokenizer.")
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]

    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=text_hidden,
            intermediate_size=ffn,
            num_hidden_layers=text_layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=MAX_LENGTH,
            # 5.x reads rope settings from rope_parameters, not rope_scaling.
            rope_parameters={
                "rope_type": "default",
                "rope_theta": rope_theta,
                "mrope_section": _mrope_section(head_dim),
            },
            bos_token_id=eot,
            eos_token_id=im_end,
            pad_token_id=eot,
        ),
        vision_config=dict(
            depth=vision_depth,
            hidden_size=vision_hidden,
            intermediate_size=vision_ffn,
            num_heads=vision_heads,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
            out_hidden_size=text_hidden,
            window_size=int(math.isqrt(max_pixels)),  # pixels: one window spans a max_pixels square image
            fullatt_block_indexes=[vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,  # saves vocab x text_hidden parameters
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=eot,
        eos_token_id=[im_end, eot],
        pad_token_id=eot,
        suppress_tokens=[ids[t] for t in SUPPRESSED_TOKENS],
    )
    vision = dict(
        patch_size=patch, merge_size=merge, temporal_patch_size=2, min_pixels=min_pixels, max_pixels=max_pixels
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**vision),  # required in 5.x even without videos
        chat_template=CHAT_TEMPLATE,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # model.safetensors + config.json + generation_config.json
    processor.save_pretrained(out)
    return out


def _versions() -> dict[str, str]:
    import open_clip
    import tokenizers
    import transformers

    modules = {"torch": torch, "transformers": transformers, "tokenizers": tokenizers, "open_clip": open_clip}
    return {name: module.__version__ for name, module in modules.items()}


def build_assets(
    out_dir: str | Path, seed: int = 0, force: bool = False, num_texts: int = 2000, vocab_size: int = 512
) -> dict[str, Path]:
    """Build tokenizer + VLM (``out_dir/vlm``) + CLIP (``out_dir/clip``) and ``out_dir/assets.json``.

    Skips the work when ``assets.json`` records the same arguments and both directories exist.
    Returns ``{"vlm", "clip", "manifest"}`` as absolute paths.

    Args:
        out_dir: directory for the assets (created).
        seed: seed for the tokenizer corpus and both models' weights.
        force: rebuild even when a matching manifest exists.
        num_texts: synthetic texts the tokenizer is trained on.
        vocab_size: tokenizer vocabulary bound (see ``build_tokenizer``).
    """
    out = Path(out_dir).resolve()
    paths = {"vlm": out / "vlm", "clip": out / "clip", "manifest": out / "assets.json"}
    key = {"format": ASSETS_FORMAT, "seed": seed, "num_texts": num_texts, "vocab_size": vocab_size}
    if not force and paths["manifest"].is_file() and paths["vlm"].is_dir() and paths["clip"].is_dir():
        try:
            if json.loads(paths["manifest"].read_text()).get("args") == key:
                return paths
        except json.JSONDecodeError:
            pass  # a damaged manifest means a rebuild
    from transformers import AutoModelForImageTextToText

    from pebr_lit.demo.synthetic import corpus
    from pebr_lit.format import response as fmt

    started = time.perf_counter()
    paths["manifest"].unlink(missing_ok=True)  # written last, so a half-built directory is never "done"
    for sub in ("vlm", "clip"):
        shutil.rmtree(paths[sub], ignore_errors=True)
    headings = [fmt.DESCRIPTION_HEADING, fmt.RATIONALE_HEADING, fmt.THINK_HEADING, fmt.ANSWER_HEADING]
    tokenizer = build_tokenizer([fmt.INSTRUCTION, *headings, *corpus(num_texts, seed=seed)], vocab_size=vocab_size)
    build_tiny_vlm(paths["vlm"], tokenizer, seed=seed)
    build_tiny_clip(paths["clip"], seed=seed)
    clip_model = load_clip(paths["clip"])[0]
    manifest = {
        "args": key,
        "paths": {"vlm": "vlm", "clip": "clip"},  # relative, so the directory can move
        "vocab_size": len(tokenizer),
        "parameters": {
            "vlm": AutoModelForImageTextToText.from_pretrained(paths["vlm"]).num_parameters(),
            "clip": sum(p.numel() for p in clip_model.parameters()),
        },
        "versions": _versions(),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    paths["manifest"].write_text(json.dumps(manifest, indent=2))
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m pebr_lit.demo.tiny --out DIR [--seed S] [--force]``: build the assets, print one line."""
    parser = argparse.ArgumentParser(
        prog="python -m pebr_lit.demo.tiny", description=build_assets.__doc__.splitlines()[0]
    )
    parser.add_argument("--out", required=True, help="directory for vlm/, clip/ and assets.json")
    parser.add_argument("--seed", type=int, default=0, help="seed for the tokenizer corpus and the weights")
    parser.add_argument("--force", action="store_true", help="rebuild even if assets.json matches")
    args = parser.parse_args(argv)
    manifest_path = Path(args.out) / "assets.json"
    before = manifest_path.stat().st_mtime_ns if manifest_path.is_file() else None
    paths = build_assets(args.out, seed=args.seed, force=args.force)
    cached = paths["manifest"].stat().st_mtime_ns == before
    manifest = json.loads(paths["manifest"].read_text())
    params = manifest["parameters"]
    print(
        f"tiny assets in {paths['manifest'].parent}: vlm {params['vlm']:,} params, vocab {manifest['vocab_size']}, "
        f"clip {params['clip']:,} params, seed {args.seed}, "
        + ("cached" if cached else f"built in {manifest['build_seconds']:.1f} s")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
