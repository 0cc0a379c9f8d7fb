"""Model shapes: the shipped table against transformers' defaults and meta-device models, config.json reading."""

from __future__ import annotations

import json

import pytest
import torch

from pebr_lit.plan.shapes import SHAPES, model_shapes


def test_table_matches_transformers_qwen2_5_vl_defaults():
    # transformers' Qwen2_5_VLConfig() defaults are the 72B's text model (hidden 8192, 80 layers), not the 7B's,
    # and its vision defaults match every published tower except hidden_size (3584 there, 1280 published).
    from transformers import Qwen2_5_VLConfig

    cfg = Qwen2_5_VLConfig()
    text, vision = cfg.text_config, cfg.vision_config
    big = SHAPES["Qwen/Qwen2.5-VL-72B-Instruct"]
    assert (big.layers, big.hidden, big.intermediate, big.heads, big.kv_heads, big.vocab) == (
        text.num_hidden_layers,
        text.hidden_size,
        text.intermediate_size,
        text.num_attention_heads,
        text.num_key_value_heads,
        text.vocab_size,
    )
    seven = SHAPES["Qwen/Qwen2.5-VL-7B-Instruct"]
    assert seven.tied == cfg.tie_word_embeddings is False
    assert seven.vocab == text.vocab_size
    v = seven.vision
    assert (v.depth, v.intermediate, v.heads, v.patch, v.merge, v.temporal_patch, v.out_hidden) == (
        vision.depth,
        vision.intermediate_size,
        vision.num_heads,
        vision.patch_size,
        vision.spatial_merge_size,
        vision.temporal_patch_size,
        vision.out_hidden_size,
    )


def _meta_model(shapes, qwen2: bool):
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig, Qwen2VLConfig

    s, v = shapes, shapes.vision
    text = {
        "hidden_size": s.hidden,
        "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "vocab_size": s.vocab,
        "tie_word_embeddings": s.tied,
    }
    if qwen2:
        vis = {
            "depth": v.depth,
            "embed_dim": v.hidden,
            "mlp_ratio": 4,
            "num_heads": v.heads,
            "hidden_size": v.out_hidden,
        }
        cfg = Qwen2VLConfig(text_config=text, vision_config=vis, tie_word_embeddings=s.tied)
    else:
        vis = {"depth": v.depth, "hidden_size": v.hidden, "intermediate_size": v.intermediate, "num_heads": v.heads}
        vis["out_hidden_size"] = v.out_hidden
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vis, tie_word_embeddings=s.tied)
    with torch.device("meta"):  # shapes only, no memory
        return AutoModelForImageTextToText.from_config(cfg)


@pytest.mark.parametrize(
    "hub_id", ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2-VL-2B-Instruct"]
)
def test_parameter_counts_equal_a_meta_device_model(hub_id):
    s = SHAPES[hub_id]
    model = _meta_model(s, qwen2="Qwen2-VL" in hub_id)
    named = dict(model.named_parameters())
    assert s.params() == sum(p.numel() for p in named.values())
    assert s.vision.params() == sum(p.numel() for n, p in named.items() if ".visual." in f".{n}")
    assert s.embedding_params() == sum(p.numel() for n, p in named.items() if "embed_tokens" in n or "lm_head" in n)


def test_the_7b_has_its_published_size():
    assert SHAPES["Qwen/Qwen2.5-VL-7B-Instruct"].params() == 8_292_166_656  # "8.29B" on the model card


def _config_json(text_under: bool) -> dict:
    text = {
        "num_hidden_layers": 3,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 500,
    }
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64}
    vision |= {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}
    body = {"text_config": text} if text_under else dict(text)
    return {**body, "tie_word_embeddings": True, "vision_config": vision}


@pytest.mark.parametrize("text_under", [False, True], ids=["top-level (transformers 4)", "text_config (5)"])
def test_config_json_is_read_from_a_directory(tmp_path, text_under):
    (tmp_path / "config.json").write_text(json.dumps(_config_json(text_under)))
    s = model_shapes(str(tmp_path))
    assert (s.layers, s.hidden, s.intermediate, s.heads, s.kv_heads, s.vocab, s.tied) == (3, 64, 96, 4, 2, 500, True)
    assert (s.dim, s.vision.depth, s.vision.hidden, s.vision.intermediate, s.vision.out_hidden) == (16, 2, 32, 48, 64)
    assert s.vision.gated_mlp


def test_qwen2_vl_config_json_names_the_vit_width_embed_dim(tmp_path):
    cfg = _config_json(False)
    cfg["vision_config"] = {"depth": 2, "embed_dim": 32, "mlp_ratio": 4, "num_heads": 2, "hidden_size": 64}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    v = model_shapes(str(tmp_path)).vision
    assert (v.hidden, v.intermediate, v.out_hidden, v.gated_mlp) == (32, 128, 64, False)


def test_unknown_hub_id_and_broken_config_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="Download the checkpoint"):
        model_shapes("someone/other-model")
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {}}))
    with pytest.raises(ValueError, match=r"config.json: no '\w+'.*Qwen2-VL"):
        model_shapes(str(tmp_path))
