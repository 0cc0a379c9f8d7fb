"""FGCLIPScorer: FG-CLIP (``qihoo360/fg-clip-large``, remote code) image-text cosine, preprocessed as the authors do.

The authors' stage-1 reward scores with FG-CLIP-large: each image squashed to 336 x 336 (a resize that
keeps the whole picture, not the centre crop CLIP processors make), then the checkpoint's own image
processor; each description tokenised to exactly 248 tokens (padded, cut beyond) and encoded on the
long-text path (``get_text_features(..., walk_short_pos=False)``); both features L2-normalised; cosine.
The model comes through transformers' auto classes with the checkpoint's own code, which runs only
after ``clip.remote_code.check_remote_code`` (explicit trust, a pinned commit for a hub id, FG-CLIP2
refused). Same contract as the other scorers (``clip.scorers``): ``similarity(images, texts)`` never
raises on model output or a bad image; a failed item scores NaN and is counted.

Left out on purpose: the reward on top of the similarity (``rewards``), choosing the text (the caller
passes the description section), FG-CLIP's region and dense features, and FG-CLIP2 (a different model).
"""

from __future__ import annotations

from typing import Any

import torch

from pebr_lit.clip.remote_code import AUTHORS_MODEL, check_remote_code
from pebr_lit.clip.scorers import _BatchedScorer, _unit

#: Weight dtypes by name; "auto" keeps what the checkpoint's config says (transformers 5's default).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class FGCLIPScorer(_BatchedScorer):
    """FG-CLIP through transformers remote code, with the authors' 336 x 336 resize and 248-token long text."""

    def __init__(
        self,
        model_name_or_path: str = AUTHORS_MODEL,
        revision: str | None = None,
        trust_remote_code: bool = False,
        local_files_only: bool = False,
        cache_dir: str | None = None,
        image_size: int = 336,
        max_text_tokens: int = 248,
        walk_short_pos: bool = False,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 32,
    ) -> None:
        """
        Args:
            model_name_or_path: hub id (authors: qihoo360/fg-clip-large) or a local copy downloaded with `hf download`.
            revision: commit hash (40 hex digits) of the hub id; required with a hub id, not needed for a directory.
            trust_remote_code: allow running the checkpoint's own Python (FG-CLIP's model code); must be set on purpose.
            local_files_only: never contact the hub: read the hub id's pinned revision from the local cache only.
            cache_dir: hub cache folder for a hub id; null = Hugging Face's default (HF_HUB_CACHE).
            image_size: side in pixels each image is resized (not cropped) to before the processor (authors: 336).
            max_text_tokens: tokens per description, padded and truncated to exactly this (authors: 248).
            walk_short_pos: FG-CLIP's short-text (77-position) path; False is the long-text path the authors use.
            device: torch device for the model, taken on first use; a bare cuda is each process's current GPU.
            dtype: weights: float32 (the authors' transformers 4 default), bfloat16, float16, or auto (as saved).
            batch_size: image-text pairs per forward pass.
        """
        super().__init__(batch_size)
        if image_size < 1:
            raise ValueError(
                f"FGCLIPScorer.image_size={image_size!r}: must be >= 1 pixels. Use 336 (FG-CLIP-large's input side)."
            )
        if max_text_tokens < 3:  # a start token, an end token and at least one word
            raise ValueError(
                f"FGCLIPScorer.max_text_tokens={max_text_tokens!r}: must be >= 3 tokens. Use 248 (the authors' "
                "long-text length)."
            )
        if dtype != "auto" and dtype not in DTYPES:
            raise ValueError(f"FGCLIPScorer.dtype={dtype!r}: unknown dtype. Use 'auto' or one of {sorted(DTYPES)}.")
        self.device = torch.device(device)  # a typo fails here, before minutes of loading
        auto_class, _ = check_remote_code(model_name_or_path, revision, trust_remote_code, local_files_only, cache_dir)

        import transformers

        hub = {
            "revision": revision,
            "trust_remote_code": trust_remote_code,  # True: check_remote_code refuses otherwise
            "local_files_only": local_files_only,
            "cache_dir": cache_dir,
        }
        # The authors' AutoModelForCausalLM is FG-CLIP's own auto_map entry; transformers 5 resolves a remote
        # class only under the auto class its auto_map names, so a copy registered under AutoModel loads there.
        model = getattr(transformers, auto_class).from_pretrained(
            model_name_or_path, dtype=DTYPES.get(dtype, "auto"), **hub
        )
        # Moved to ``device`` on first use (``_placed``): built by the CLI before Lightning gives each rank its GPU.
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model_name_or_path, **hub)
        self.image_processor = transformers.AutoImageProcessor.from_pretrained(model_name_or_path, **hub)
        self.image_size = image_size
        self.max_text_tokens = max_text_tokens
        self.walk_short_pos = walk_short_pos

    def _image_input(self, image: Any) -> torch.Tensor:
        from PIL import Image

        # The whole image squashed to a square (aspect ratio not kept), so the processor's centre crop, if any,
        # removes nothing; bicubic is what PIL's resize uses by default for the authors' RGB images.
        square = image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        return self.image_processor.preprocess(square, return_tensors="pt")["pixel_values"][0]  # [3, H, W]

    def _text_input(self, text: str) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            [text], max_length=self.max_text_tokens, padding="max_length", truncation=True, return_tensors="pt"
        )
        # No attention mask: the authors pass none, and FG-CLIP pools at the end-of-text token.
        return {"input_ids": enc["input_ids"][0]}  # [T = max_text_tokens]

    def _cosine(self, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        device, dtype = self._placed(), next(self.model.parameters()).dtype
        image = self.model.get_image_features(pixels.to(device, dtype))  # [B, D]
        text = self.model.get_text_features(
            tokens["input_ids"].to(device),  # [B, T]
            walk_short_pos=self.walk_short_pos,
        )  # [B, D]
        return (_unit(image.float()) * _unit(text.float())).sum(dim=-1)  # [B]
