"""Smoke: a short contrastive run on the small world improves held-out CLIP figures and saves a loadable model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from pebr_lit.clip.loading import load_clip
from pebr_lit.clip.scorers import ClipScorer
from pebr_lit.clip.train import load_pairs, main, train_clip
from pebr_lit.data.records import load_records
from pebr_lit.data.sources import RecordError

# 64 training pairs, 16 held out; batch 16 sees each pair ~10 times in 40 steps (~2 s on 2 threads).
SHORT = dict(steps=40, batch_size=16, lr=2e-3, warmup=5, val_limit=16, eval_candidates=16, progress=False)


@pytest.fixture(scope="module")
def trained(assets, world, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "trained"
    return out, train_clip(assets["clip"], world / "train.jsonl", world / "val.jsonl", out, **SHORT)


def test_training_lowers_held_out_loss_and_lr_zero_does_not(assets, world, trained, tmp_path):
    _, m = trained
    # Random CLIP: held-out 16-way loss ~ ln 16 = 2.77; a real fit moves it clearly below.
    assert m["after"]["loss"] < m["before"]["loss"] - 0.3, (m["before"]["loss"], m["after"]["loss"])
    assert m["after"]["cos_match"] > m["after"]["cos_other"]
    assert m["last_loss"] < m["first_loss"]
    frozen = train_clip(
        assets["clip"], world / "train.jsonl", world / "val.jsonl", tmp_path / "frozen", **{**SHORT, "lr": 0.0}
    )
    # lr=0 (weight decay is scaled by lr in AdamW too): the check above must fail.
    assert frozen["after"]["loss"] == pytest.approx(frozen["before"]["loss"], abs=1e-5)


def test_saved_model_reloads_with_the_same_features(assets, world, trained):
    out, _ = trained
    assert (out / "open_clip_config.json").read_text() == (assets["clip"] / "open_clip_config.json").read_text()
    model, preprocess, tokenizer = load_clip(out)
    again, _, _ = load_clip(out)
    start, _, _ = load_clip(assets["clip"])
    pixels, tokens, texts = load_pairs(world / "val.jsonl", preprocess, tokenizer, limit=4)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(pixels), again.encode_image(pixels))  # [4, D]
        torch.testing.assert_close(model.encode_text(tokens), again.encode_text(tokens))  # [4, D]
        assert not torch.allclose(model.encode_image(pixels), start.encode_image(pixels))  # weights did change
    # The fast pixel path equals open_clip's own preprocessing.
    images = [r.load_images()[0] for r in load_records(world / "val.jsonl", limit=4)]
    torch.testing.assert_close(pixels, torch.stack([preprocess(i) for i in images]))
    scorer = ClipScorer(model=str(out))
    s = scorer.similarity(images, texts)  # [4]
    assert torch.isfinite(s).all() and scorer.failures == 0


def test_rerun_with_same_args_is_cached_and_changed_args_retrain(assets, world, trained, capsys, tmp_path):
    out, m = tmp_path / "copy", trained[1]
    shutil.copytree(trained[0], out)
    mtime = (out / "open_clip_model.safetensors").stat().st_mtime_ns
    # The manifest keys on the arguments, not the directory name.
    again = train_clip(assets["clip"], world / "train.jsonl", world / "val.jsonl", out, **SHORT)
    assert again["cached"] and again["after"] == m["after"]
    assert (out / "open_clip_model.safetensors").stat().st_mtime_ns == mtime
    args = [
        "--clip",
        str(assets["clip"]),
        "--records",
        str(world / "train.jsonl"),
        "--val-records",
        str(world / "val.jsonl"),
        "--out",
        str(out),
        "--steps",
        "40",
        "--batch-size",
        "16",
        "--lr",
        "2e-3",
        "--warmup",
        "5",
        "--val-limit",
        "16",
        "--eval-candidates",
        "16",
        "--no-progress",
    ]
    assert main(args) == 0
    assert "cached" in capsys.readouterr().out
    assert main([*args[:-1], "--steps", "2", "--no-progress"]) == 0
    assert "cached" not in capsys.readouterr().out
    assert json.loads((out / "train_clip.json").read_text())["args"]["steps"] == 2


def test_record_without_description_is_named(assets, world, tmp_path):
    rows = [json.loads(line) for line in (world / "train.jsonl").read_text().splitlines()[:20]]
    rows[3]["description"] = None
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "images").symlink_to(world / "images")
    with pytest.raises(RecordError, match=r"bad\.jsonl:row 4: field 'description': has no description"):
        train_clip(assets["clip"], bad, world / "val.jsonl", tmp_path / "out", **SHORT)
    assert not (tmp_path / "out").exists()
