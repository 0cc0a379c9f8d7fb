"""CLIP scorers on tiny random models (open_clip and transformers): shapes, determinism, truncation, and
failures that are counted instead of raised."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from pebr_lit.clip.scorers import ClipScorer, HFClipScorer, SimilarityScorer
from pebr_lit.errors import ConfigError
from pebr_lit.rewards.components import clip_reward_from_similarity

WORDS = "a red blue green circle square triangle two three shapes large small".split()


def build_tiny_hf_clip(out: Path) -> Path:
    """A random 1-layer CLIPModel with a word-level tokenizer, saved with save_pretrained (no hub access)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=16,
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(out)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=["open_clip", "hf"])
def scorer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SimilarityScorer:
    if request.param == "open_clip":
        from pebr_lit.demo.tiny_clip import build_tiny_clip

        return ClipScorer(str(build_tiny_clip(tmp_path_factory.mktemp("open_clip"))), batch_size=3)
    return HFClipScorer(str(build_tiny_hf_clip(tmp_path_factory.mktemp("hf_clip"))), batch_size=3)


def images(n: int) -> list[Image.Image]:
    """Different sizes and modes: preprocessing must bring them all to the model's input."""
    colours = ["red", "blue", "green", "yellow", "white"]
    sizes = [(112, 112), (50, 80), (300, 20), (7, 7), (112, 112)]
    out = [Image.new("RGB", sizes[i % 5], colours[i % 5]) for i in range(n)]
    if n > 1:
        out[1] = out[1].convert("L")  # grayscale
    if n > 2:
        out[2] = out[2].convert("RGBA")
    return out


def corrupt_image() -> Image.Image:
    """Opens lazily, then fails on decode: a PNG cut short."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()[:60]))


def test_shape_range_and_protocol(scorer: SimilarityScorer) -> None:
    texts = ["a red circle", "two blue squares", "three shapes", "a large green triangle", "small"]
    scores = scorer.similarity(images(5), texts)
    assert isinstance(scorer, SimilarityScorer)
    assert scores.shape == (5,) and scores.dtype == torch.float32 and scores.device.type == "cpu"
    assert bool(torch.isfinite(scores).all())
    assert bool((scores.abs() <= 1 + 1e-5).all())  # cosine similarities
    assert scorer.last_failures == 0
    assert scorer.similarity([], []).shape == (0,)


def test_identical_inputs_identical_scores_whatever_the_batch(scorer: SimilarityScorer) -> None:
    imgs, texts = images(4) + images(1), ["a red circle"] * 5
    first, second = scorer.similarity(imgs, texts), scorer.similarity(imgs, texts)
    assert torch.equal(first, second)
    # Items 0 and 4 are the same image and text, in different batches of 3: same score.
    assert first[0].item() == pytest.approx(first[4].item(), abs=1e-5)
    alone = scorer.similarity(imgs[1:2], texts[1:2])
    assert alone.item() == pytest.approx(first[1].item(), abs=1e-5)
    # Different images give different scores, or the scorer would not be looking at the image.
    assert first[0].item() != pytest.approx(first[1].item(), abs=1e-6)


def test_garbage_texts_do_not_raise(scorer: SimilarityScorer) -> None:
    garbage = ["", "x" * 10_000, "😀🙃🤖" * 500, "\x00\n\t\r", "### Image Description: ###", "red " * 5000]
    scores = scorer.similarity(images(len(garbage)), garbage)
    assert bool(torch.isfinite(scores).all()), scores
    assert scorer.last_failures == 0


def test_text_beyond_the_context_is_cut(scorer: SimilarityScorer) -> None:
    # Identical up to the context length (<= 77 tokens), different after it: identical scores.
    head = "a red circle and two blue squares " * 40
    scores = scorer.similarity(images(1) * 2, [head + "green", head + "triangle large small"])
    assert scores[0].item() == pytest.approx(scores[1].item(), abs=1e-6)


def test_failures_are_counted_and_score_nan(scorer: SimilarityScorer) -> None:
    closed = Image.new("RGB", (16, 16), "blue")
    closed.close()
    imgs = [images(1)[0], corrupt_image(), None, closed, images(1)[0]]
    texts = ["a red circle", "a red circle", "a red circle", "a red circle", None]  # None text: scored as ""
    before = scorer.failures
    scores = scorer.similarity(imgs, texts)  # type: ignore[arg-type]
    assert torch.isfinite(scores).tolist() == [True, False, False, False, True]
    assert scorer.last_failures == 3 and scorer.failures == before + 3
    assert [e.split(":")[0] for e in scorer.last_errors] == ["item 1", "item 2", "item 3"]
    assert all("image" in e for e in scorer.last_errors)
    assert [clip_reward_from_similarity(s) for s in scores.tolist()][1:4] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 images for 1 texts"):
        scorer.similarity(images(2), ["a"])


def test_a_batch_failure_falls_back_to_items(scorer: SimilarityScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = scorer.similarity(images(3), ["a", "b", "c"])
    real = type(scorer)._cosine

    def fails_on_batches(self, pixels: torch.Tensor, tokens: dict) -> torch.Tensor:
        if pixels.shape[0] > 1:
            raise RuntimeError("CUDA out of memory")  # one item alone still fits
        return real(self, pixels, tokens)

    monkeypatch.setattr(type(scorer), "_cosine", fails_on_batches)
    scores = scorer.similarity(images(3), ["a", "b", "c"])
    assert torch.allclose(scores, reference, atol=1e-5) and scorer.last_failures == 0

    def nan_model(self, pixels: torch.Tensor, tokens: dict) -> torch.Tensor:
        return torch.full((pixels.shape[0],), math.nan)

    monkeypatch.setattr(type(scorer), "_cosine", nan_model)
    assert bool(scorer.similarity(images(2), ["a", "b"]).isnan().all()) and scorer.last_failures == 2


def test_bad_construction_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^ClipScorer\.batch_size=0: must be >= 1"):
        ClipScorer(str(tmp_path), batch_size=0)
    with pytest.raises(ConfigError, match="open_clip_config.json"):
        ClipScorer(str(tmp_path))


@pytest.mark.parametrize("backend", ["open_clip", "hf"])
def test_the_model_moves_to_the_current_gpu_on_first_use(backend, tmp_path, monkeypatch):
    # Under DDP/FSDP each rank builds the scorer from the CLI before Lightning gives the rank its GPU: a model
    # placed at construction would sit on cuda:0 for every rank. No GPU here, so the move is observed.
    from pebr_lit.demo.tiny_clip import build_tiny_clip

    if backend == "open_clip":
        built = ClipScorer(str(build_tiny_clip(tmp_path)), device="cuda")
    else:
        built = HFClipScorer(str(build_tiny_hf_clip(tmp_path)), device="cuda")
    assert next(built.model.parameters()).device.type == "cpu"
    moved: list[torch.device] = []
    monkeypatch.setattr(built.model, "to", lambda device: moved.append(device) or built.model)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 5)
    assert built._placed() == torch.device("cuda", 5) and built._placed() == torch.device("cuda", 5)
    assert moved == [torch.device("cuda", 5)]  # moved once, to this process's GPU
    built.device = torch.device("cuda", 2)  # an explicit index is kept
    assert built._placed() == torch.device("cuda", 2) and moved[-1] == torch.device("cuda", 2)
