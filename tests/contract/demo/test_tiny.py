"""Contract tests for pebr_lit.demo.tiny: the tiny assets load through the same paths as real checkpoints."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pebr_lit.demo import tiny
from pebr_lit.errors import ConfigError
from pebr_lit.format import response as fmt

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")


def small_corpus(num_texts: int = 240, seed: int = 0):
    """Texts shaped like the synthetic world's (user turns and PeBR responses), without importing it."""
    for i in range(num_texts // 2):
        color, shape, n = COLORS[(i + seed) % 4], SHAPES[i % 3], i % 7
        yield fmt.build_user_text(f"How many {color} {shape}s are in the image?")
        yield fmt.render_response(
            f"There are {n} {color} {shape}s and one large {COLORS[(i + 1) % 4]} circle.",
            f"Count the {color} {shape}s.",
            [f"I see {n} {color} {shape}s.", f"So the count is {n}."],
            str(n),
        )


def chat(answer: str | None = None) -> list[dict]:
    messages = fmt.build_messages("How many red circles are in the image?")
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


@pytest.fixture(scope="module")
def tokenizer():
    return tiny.build_tokenizer(small_corpus())


@pytest.fixture(scope="module")
def vlm_dir(tokenizer, tmp_path_factory):
    return tiny.build_tiny_vlm(tmp_path_factory.mktemp("vlm"), tokenizer, seed=0)


@pytest.fixture(scope="module")
def loaded(vlm_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return AutoModelForImageTextToText.from_pretrained(vlm_dir).eval(), AutoProcessor.from_pretrained(vlm_dir)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny.build_tiny_clip(tmp_path_factory.mktemp("clip"), seed=0)


def image(colour=(214, 39, 40), size=112):
    return Image.new("RGB", (size, size), colour)


# ---- tokenizer ---------------------------------------------------------------------------------


def test_special_tokens_and_roles(tokenizer):
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tiny.SPECIAL_TOKENS]
    assert ids == list(range(len(tiny.SPECIAL_TOKENS)))  # trainer special tokens come first, in order
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.bos_token is None
    assert len(tiny.SPECIAL_TOKENS) + 256 < len(tokenizer) <= 512
    # "\n<|image_pad|>" stays three tokens: a special token is never merged with its neighbours.
    assert tokenizer("\n<|image_pad|>\n", add_special_tokens=True)["input_ids"] == [
        tokenizer.convert_tokens_to_ids("Ċ"),
        ids[5],
        tokenizer.convert_tokens_to_ids("Ċ"),
    ]
    # The role names were trained in, so each costs one token instead of 4-9 bytes.
    for role in ("user", "assistant", "system"):
        assert len(tokenizer(role)["input_ids"]) == 1, role


def test_digits_split_and_bytes_round_trip(tokenizer):
    # Qwen's split puts every digit in its own pre-token, so "2025" cannot merge into fewer than 4.
    assert len(tokenizer("2025")["input_ids"]) == 4
    for text in ["### The final answer is: 12", "naïve ✓ 日本\ttabs\n\nnewlines", fmt.INSTRUCTION]:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_renders_qwen_layout(tokenizer):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"
    plain = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "A"},
    ]
    assert tokenizer.apply_chat_template(plain, tokenize=False) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )


def test_prompt_ids_are_a_prefix_of_the_full_chat(tokenizer):
    answer = fmt.render_response("One red circle.", "Count red circles.", ["I see one.", "So 1."], "1")
    # 5.x: apply_chat_template(tokenize=True) returns a BatchEncoding by default.
    prompt = tokenizer.apply_chat_template(chat(), add_generation_prompt=True)["input_ids"]
    full = tokenizer.apply_chat_template(chat(answer))["input_ids"]
    assert full[: len(prompt)] == prompt
    assert tokenizer.decode(full[len(prompt) :]) == answer + "<|im_end|>\n"


def test_tokenizer_on_the_synthetic_corpus():
    from pebr_lit.demo.synthetic import corpus

    texts = list(corpus(200, seed=0))
    tok = tiny.build_tokenizer(texts)
    assert len(tok) <= 512
    assert all(tok.decode(tok(t)["input_ids"]) == t for t in texts)
    # Whole-word merges for the format's own vocabulary: "### Image Description:" is ### + 2 words + ":".
    assert len(tok(fmt.DESCRIPTION_HEADING)["input_ids"]) <= 4


def test_tokenizer_is_deterministic_and_validates():
    a = tiny.build_tokenizer(small_corpus()).backend_tokenizer.to_str()
    assert tiny.build_tokenizer(small_corpus()).backend_tokenizer.to_str() == a
    with pytest.raises(ValueError, match="below 263"):
        tiny.build_tokenizer(small_corpus(), vocab_size=200)
    with pytest.raises(ValueError, match="no texts"):
        tiny.build_tokenizer([])


# ---- VLM ---------------------------------------------------------------------------------------


def test_vlm_round_trip_config_and_processor(vlm_dir, loaded, tokenizer):
    model, processor = loaded
    cfg = model.config
    tok = processor.tokenizer
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert len(tok) == len(tokenizer) == cfg.text_config.vocab_size
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    # head size 128/4 = 32 -> 16 rotary frequencies split 4:6:6 over (t, h, w), as 16:24:24 in Qwen2.5-VL.
    assert cfg.text_config.rope_parameters["mrope_section"] == [4, 6, 6]
    assert tok.chat_template == processor.chat_template == tiny.CHAT_TEMPLATE
    gen = model.generation_config
    assert gen.eos_token_id == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    assert gen.pad_token_id == tok.pad_token_id
    # Tied embeddings: the ~0.6 M parameters of the tiny model (docs/demo.md).
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert 0.5e6 < model.num_parameters() < 0.7e6


@pytest.mark.parametrize(("side", "tokens"), [(112, 16), (224, 16), (56, 4)])
def test_image_token_count(loaded, side, tokens):
    _, processor = loaded
    text = processor.apply_chat_template(chat(), add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[image(size=side)], return_tensors="pt")
    # side 112: 8x8 patches of 14 px, 2x2 merged -> 16 tokens; 224 is scaled down to max_pixels=112^2;
    # 56 stays (>= min_pixels 56^2): 4x4 patches -> 4 tokens.
    grid = side if side <= 112 else 112
    assert enc["image_grid_thw"].tolist() == [[1, grid // 14, grid // 14]]
    assert enc["pixel_values"].shape == ((grid // 14) ** 2, 3 * 2 * 14 * 14)  # [patches, C*T*P*P]
    assert int((enc["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum()) == tokens
    assert "mm_token_type_ids" in enc  # without it the model silently falls back to 1-D positions


def test_loss_of_random_model_is_near_uniform(loaded):
    model, processor = loaded
    answer = fmt.render_response("One red circle.", "Count.", ["One."], "1")
    text = processor.apply_chat_template(chat(answer), tokenize=False)
    enc = processor(text=[text], images=[image()], return_tensors="pt")
    with torch.no_grad():
        loss = model(**enc, labels=enc["input_ids"]).loss
    # Init std 0.02 and a unit-RMS final norm give logits of std ~ 0.02 * sqrt(128) = 0.23, so the
    # loss is ln(V) + ~0.03: near-uniform predictions.
    assert math.isfinite(loss.item())
    assert abs(loss.item() - math.log(model.config.text_config.vocab_size)) < 0.2


def test_sampled_generation_with_image(loaded):
    model, processor = loaded
    text = processor.apply_chat_template(chat(), add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text, text], images=[image(), image((31, 100, 200))], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, num_return_sequences=2, max_new_tokens=12, min_new_tokens=12)
    assert out.shape == (4, enc["input_ids"].shape[1] + 12)  # [B*G, L+new]
    assert torch.equal(out[::2, : enc["input_ids"].shape[1]], enc["input_ids"])


class FavourOneToken(torch.nn.Module):
    """A stand-in lm_head whose logits put all the mass on one token."""

    def __init__(self, vocab: int, token: int):
        super().__init__()
        self.vocab, self.token = vocab, token

    def forward(self, hidden):  # [B, L, H] -> [B, L, V]
        logits = torch.zeros(*hidden.shape[:-1], self.vocab)
        logits[..., self.token] = 50.0
        return logits


def test_generation_never_samples_vision_tokens(vlm_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = AutoModelForImageTextToText.from_pretrained(vlm_dir), AutoProcessor.from_pretrained(vlm_dir)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    model.lm_head = FavourOneToken(model.config.text_config.vocab_size, pad)
    text = processor.apply_chat_template(chat(), add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[image()], return_tensors="pt")
    n = enc["input_ids"].shape[1]
    suppressed = {processor.tokenizer.convert_tokens_to_ids(t) for t in tiny.SUPPRESSED_TOKENS}
    torch.manual_seed(0)
    new = model.generate(**enc, do_sample=True, max_new_tokens=8)[0, n:].tolist()
    assert new and not suppressed & set(new)
    model.generation_config.suppress_tokens = None  # control: the favoured token wins without the config
    new = model.generate(**enc, do_sample=True, max_new_tokens=8)[0, n:].tolist()
    assert new == [pad] * 8


def test_vlm_weights_follow_the_seed(vlm_dir, tokenizer, tmp_path):
    same = load_file(tiny.build_tiny_vlm(tmp_path / "same", tokenizer, seed=0) / "model.safetensors")
    other = load_file(tiny.build_tiny_vlm(tmp_path / "other", tokenizer, seed=1) / "model.safetensors")
    first = load_file(vlm_dir / "model.safetensors")
    names = [n for n in first if n.endswith("q_proj.weight") or "embed_tokens" in n or "patch_embed" in n]
    assert len(names) >= 4
    assert all(torch.equal(first[n], same[n]) for n in first)
    assert not any(torch.equal(first[n], other[n]) for n in names)


def test_vlm_rejects_bad_shapes(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="head size text_hidden/heads = 100/4"):
        tiny.build_tiny_vlm(tmp_path, tokenizer, text_hidden=100)  # head size 25: odd, no rotary pairs
    with pytest.raises(ValueError, match="kv_heads=3"):
        tiny.build_tiny_vlm(tmp_path, tokenizer, kv_heads=3)


# ---- CLIP --------------------------------------------------------------------------------------


def test_clip_loads_from_directory(clip_dir):
    model, preprocess, tok = tiny.load_clip(clip_dir)
    assert not model.training
    saved = load_file(clip_dir / "open_clip_model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    images = torch.stack([preprocess(image()), preprocess(image((31, 100, 200), size=150))])  # [2, 3, 112, 112]
    assert images.shape == (2, 3, 112, 112)
    texts = tok(["one large red circle", "two blue squares", "nothing"])  # [3, 77]
    assert texts.shape == (3, 77)
    with torch.no_grad():
        img = model.encode_image(images, normalize=True)  # [2, 64]
        txt = model.encode_text(texts, normalize=True)  # [3, 64]
    assert img.shape == (2, 64) and txt.shape == (3, 64)
    assert torch.allclose(img.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(3), atol=1e-5)
    sim = img @ txt.T  # [2, 3] cosine similarities
    assert torch.isfinite(sim).all() and (sim.abs() <= 1 + 1e-5).all()
    assert torch.equal(tiny.load_clip(f"local-dir:{clip_dir}")[0].visual.conv1.weight, model.visual.conv1.weight)


def test_clip_follows_the_seed(clip_dir, tmp_path):
    first = load_file(clip_dir / "open_clip_model.safetensors")
    same = load_file(tiny.build_tiny_clip(tmp_path / "same", seed=0) / "open_clip_model.safetensors")
    other = load_file(tiny.build_tiny_clip(tmp_path / "other", seed=1) / "open_clip_model.safetensors")
    assert all(torch.equal(first[k], same[k]) for k in first)
    assert not torch.equal(first["visual.conv1.weight"], other["visual.conv1.weight"])


def test_load_clip_errors_name_the_problem(clip_dir, tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}.*open_clip_config.json"):
        tiny.load_clip(tmp_path)
    with pytest.raises(ValueError, match="holds its own weights"):
        tiny.load_clip(clip_dir, pretrained="openai")


# ---- build_assets and the CLI ------------------------------------------------------------------


@pytest.fixture
def fake_synthetic(monkeypatch):
    """Stand in for pebr_lit.demo.synthetic (written elsewhere) and count corpus() calls."""
    calls = []

    def corpus(num_texts, seed=0):
        calls.append((num_texts, seed))
        return small_corpus(min(num_texts, 240), seed)

    module = types.ModuleType("pebr_lit.demo.synthetic")
    module.corpus = corpus
    monkeypatch.setitem(sys.modules, "pebr_lit.demo.synthetic", module)
    return calls


def test_build_assets_cli_is_idempotent(fake_synthetic, tmp_path, capsys):
    from transformers import AutoTokenizer

    assert tiny.main(["--out", str(tmp_path), "--seed", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "built in" in line and "vocab" in line
    assert fake_synthetic == [(2000, 3)]
    manifest = json.loads((tmp_path / "assets.json").read_text())
    assert manifest["args"] == {"format": tiny.ASSETS_FORMAT, "seed": 3, "num_texts": 2000, "vocab_size": 512}
    assert manifest["paths"] == {"vlm": "vlm", "clip": "clip"}
    assert manifest["vocab_size"] == len(AutoTokenizer.from_pretrained(tmp_path / "vlm"))
    assert 0.5e6 < manifest["parameters"]["vlm"] < 0.7e6 and manifest["parameters"]["clip"] > 1e6
    assert set(manifest["versions"]) == {"torch", "transformers", "tokenizers", "open_clip"}

    assert tiny.main(["--out", str(tmp_path), "--seed", "3"]) == 0  # same arguments: nothing rebuilt
    assert "cached" in capsys.readouterr().out and len(fake_synthetic) == 1
    paths = tiny.build_assets(tmp_path, seed=3, force=True)
    assert len(fake_synthetic) == 2 and paths["vlm"] == tmp_path.resolve() / "vlm"
    tiny.build_assets(tmp_path, seed=4)  # other seed: rebuilt
    assert fake_synthetic[-1] == (2000, 4)
    assert json.loads((tmp_path / "assets.json").read_text())["args"]["seed"] == 4


def test_interleaved_images_reach_the_processor_in_slot_order(loaded):
    """``encode_prompts`` with ``IMAGE_SLOT`` marks: each image's tokens sit at its mark, in order."""
    from pebr_lit.data.collate import encode_prompts
    from pebr_lit.format.prompts import InstructionPrompt

    _, processor = loaded
    question = f"Question: {fmt.IMAGE_SLOT} then {fmt.IMAGE_SLOT} differ?"
    enc = encode_prompts(processor, [question], [[image(size=112), image(size=56)]], InstructionPrompt(""))
    text = processor.tokenizer.decode(enc["input_ids"][0])
    # 112 px -> 16 image tokens, 56 px -> 4 (test_image_token_count): the large image comes first.
    block = "<|vision_start|>{}<|vision_end|>"
    expected = f"Question: {block.format('<|image_pad|>' * 16)} then {block.format('<|image_pad|>' * 4)} differ?"
    assert expected in text and text.count("<|vision_start|>") == 2
    assert enc["image_grid_thw"].tolist() == [[1, 8, 8], [1, 4, 4]]
