"""CLIP scorers: cosine similarity between each image and its text, the one model-backed PeBR reward input.

``ClipScorer`` (open_clip: a local directory, a schema string or a built-in name) and ``HFClipScorer``
(transformers ``CLIPModel`` + ``CLIPProcessor`` from a directory) share one interface,
``similarity(images, texts) -> Tensor[N]``, and are chosen by ``class_path``. A scorer never raises on
what a policy writes (empty, 10k-character or emoji text) nor on a bad image: the item's score is NaN,
which ``rewards.clip_reward_from_similarity`` turns into 0, and ``failures`` counts it for logging.

Left out on purpose: turning similarities into rewards (``rewards``), choosing the text (the caller
passes ``rewards.clip_text(response)``, the description section) and image loading. Images are resized
and cropped by the model's own preprocessing. FG-CLIP (the authors' scorer: remote code, images squashed
to 336 x 336, 248-token text) is ``clip.fgclip.FGCLIPScorer``, on the same ``_BatchedScorer``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

#: Characters kept per text before tokenising: far more than any CLIP context holds (77-248 tokens of
#: several characters each), and it bounds the tokenizer's work on a runaway 100k-character response.
MAX_TEXT_CHARS = 4096
MAX_ERRORS_KEPT = 8


@runtime_checkable
class SimilarityScorer(Protocol):
    """What the perception stage needs from a CLIP model."""

    #: Items that failed (NaN scores) since construction.
    failures: int

    def similarity(self, images: Sequence[Any], texts: Sequence[str]) -> torch.Tensor:
        """Cosine similarity of ``images[i]`` and ``texts[i]``: float32 ``[N]`` on CPU, NaN where it failed."""
        ...


class _BatchedScorer:
    """Batching, per-item failure isolation and counting; subclasses say how to encode one item and a batch."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(
                f"{type(self).__name__}.batch_size={batch_size!r}: must be >= 1 pairs per forward pass. "
                "Use e.g. 32, lower if memory runs out."
            )
        self.batch_size = batch_size
        #: Where the model should run, and where it is; subclasses load it on the CPU (``_placed`` moves it).
        self.device, self._on = torch.device("cpu"), torch.device("cpu")
        self.model: Any = None
        self.failures = 0
        #: Items that failed in the last ``similarity`` call.
        self.last_failures = 0
        #: Up to ``MAX_ERRORS_KEPT`` messages from the last call ("item 3: image: OSError: ..."), for the caller to log.
        self.last_errors: list[str] = []

    def _image_input(self, image: Any) -> torch.Tensor:
        """One preprocessed image ``[3, H, W]``."""
        raise NotImplementedError

    def _text_input(self, text: str) -> dict[str, torch.Tensor]:
        """One tokenised text, every tensor ``[T]`` with the same T for all texts."""
        raise NotImplementedError

    def _cosine(self, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cosine similarity ``[B]`` of a batch: pixels ``[B, 3, H, W]``, token tensors ``[B, T]``."""
        raise NotImplementedError

    def _placed(self) -> torch.device:
        """The device the model runs on, moving it there first if needed.

        A bare ``cuda`` means this process's current GPU at call time: under DDP/FSDP every rank builds the
        scorer (from the CLI) before Lightning sets its device, and a model placed then would sit on cuda:0
        for every rank.
        """
        target = self.device
        if target.type == "cuda" and target.index is None:
            target = torch.device("cuda", torch.cuda.current_device())
        if target != self._on:
            self.model.to(target)
            self._on = target
        return target

    def _error(self, index: int, what: str, exc: Exception) -> None:
        if len(self.last_errors) < MAX_ERRORS_KEPT:
            self.last_errors.append(f"item {index}: {what}: {type(exc).__name__}: {str(exc)[:200]}")

    def _prepare(self, index: int, image: Any, text: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        try:
            pixels = self._image_input(image.convert("RGB"))  # [3, H, W]
        except Exception as exc:  # a corrupt or closed image, or not an image at all
            self._error(index, "image", exc)
            return None
        try:
            tokens = self._text_input(text[:MAX_TEXT_CHARS] if isinstance(text, str) else "")
        except Exception as exc:
            self._error(index, "text", exc)
            return None
        return pixels, tokens

    def _score(self, items: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> torch.Tensor:
        pixels = torch.stack([p for p, _ in items])  # [B, 3, H, W]
        tokens = {k: torch.stack([t[k] for _, t in items]) for k in items[0][1]}  # each [B, T]
        with torch.inference_mode():
            return self._cosine(pixels, tokens).float().cpu()  # [B]

    def similarity(self, images: Sequence[Any], texts: Sequence[str]) -> torch.Tensor:
        """Cosine similarity of ``images[i]`` and ``texts[i]``: float32 ``[N]`` on CPU, NaN where it failed.

        Raises only when the two lists differ in length (a caller bug, not model output).
        """
        if len(images) != len(texts):
            raise ValueError(
                f"{type(self).__name__}.similarity: {len(images)} images for {len(texts)} texts; "
                "pass one image per text."
            )
        scores = torch.full((len(texts),), math.nan)  # [N]
        self.last_errors = []
        for start in range(0, len(texts), self.batch_size):
            ready = []
            for i in range(start, min(start + self.batch_size, len(texts))):
                prepared = self._prepare(i, images[i], texts[i])
                if prepared is not None:
                    ready.append((i, prepared))
            if not ready:
                continue
            try:
                scores[[i for i, _ in ready]] = self._score([p for _, p in ready])
            except Exception:  # find the item that breaks the batch; the others still get scores
                for i, prepared in ready:
                    try:
                        scores[i] = self._score([prepared])[0]
                    except Exception as exc:
                        self._error(i, "model", exc)
        bad = ~torch.isfinite(scores)  # [N]; includes a NaN that the model itself produced
        scores[bad] = math.nan
        self.last_failures = int(bad.sum())
        self.failures += self.last_failures
        return scores


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)  # [B, D]; a zero vector gives NaN, counted as a failure


class ClipScorer(_BatchedScorer):
    """open_clip backend, loaded through the project's one CLIP loading path (``load_clip``)."""

    def __init__(self, model: str, pretrained: str | None = None, device: str = "cpu", batch_size: int = 32) -> None:
        """
        Args:
            model: a directory with ``open_clip_config.json`` (e.g. from ``build_tiny_clip``), an open_clip
                schema string (``hf-hub:...``, ``local-dir:...``) or a built-in name such as ``ViT-L-14-336``.
            pretrained: open_clip weights tag or checkpoint file for a built-in name; None with a directory.
            device: torch device for the model, taken on first use; a bare cuda is each process's current GPU.
            batch_size: image-text pairs per forward pass.
        """
        from pebr_lit.clip.loading import load_clip

        super().__init__(batch_size)
        self.device = torch.device(device)  # a typo fails here, before loading
        self.model, self.preprocess, self.tokenizer = load_clip(model, pretrained=pretrained, device="cpu")
        # Longer texts are cut to the context (open_clip keeps the end-of-text token in the last slot).
        self.context_length = int(getattr(self.tokenizer, "context_length", None) or 77)

    def _image_input(self, image: Any) -> torch.Tensor:
        return self.preprocess(image)  # [3, H, W]

    def _text_input(self, text: str) -> dict[str, torch.Tensor]:
        return {"text": self.tokenizer([text], context_length=self.context_length)[0]}  # [T]

    def _cosine(self, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        device = self._placed()
        image = _unit(self.model.encode_image(pixels.to(device)).float())  # [B, D]
        text = _unit(self.model.encode_text(tokens["text"].to(device)).float())  # [B, D]
        return (image * text).sum(dim=-1)  # [B]


class HFClipScorer(_BatchedScorer):
    """transformers backend: ``CLIPModel`` and ``CLIPProcessor`` saved with ``save_pretrained`` in one directory."""

    def __init__(self, path: str, device: str = "cpu", batch_size: int = 32) -> None:
        """
        Args:
            path: directory (or hub name, when the hub is reachable) holding the model and its processor.
            device: torch device for the model, taken on first use; a bare cuda is each process's current GPU.
            batch_size: image-text pairs per forward pass.
        """
        from transformers import CLIPModel, CLIPProcessor

        super().__init__(batch_size)
        self.device = torch.device(device)  # a typo fails here, before loading
        self.model = CLIPModel.from_pretrained(path).eval()
        processor = CLIPProcessor.from_pretrained(path)
        self.image_processor, self.tokenizer = processor.image_processor, processor.tokenizer
        limit = getattr(self.tokenizer, "model_max_length", None)
        positions = self.model.config.text_config.max_position_embeddings
        # Tokenizers without a limit report a huge sentinel; the position table is the hard bound.
        self.context_length = min(positions, limit) if isinstance(limit, int) and limit > 0 else positions

    def _image_input(self, image: Any) -> torch.Tensor:
        return self.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]  # [3, H, W]

    def _text_input(self, text: str) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            [text], padding="max_length", truncation=True, max_length=self.context_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"][0], "attention_mask": enc["attention_mask"][0]}  # each [T]

    def _cosine(self, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        device = self._placed()
        out = self.model(
            input_ids=tokens["input_ids"].to(device),  # [B, T]
            attention_mask=tokens["attention_mask"].to(device),  # [B, T]
            pixel_values=pixels.to(device),  # [B, 3, H, W]
        )
        # CLIPModel returns unit vectors already; normalising again in float32 matches the open_clip path.
        return (_unit(out.image_embeds.float()) * _unit(out.text_embeds.float())).sum(dim=-1)  # [B]
