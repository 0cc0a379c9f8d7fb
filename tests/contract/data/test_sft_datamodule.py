"""SFTDataModule contract: splits, batch layout, label masking, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from pebr_lit.data.batches import RecordBatch
from pebr_lit.data.collate import IGNORE_INDEX, end_of_turn
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.data.sources import RecordError


def _dm(world, processor, **kw):
    dm = SFTDataModule(
        train_files=[str(world / "train.jsonl")],
        val_files=[str(world / "val.jsonl")],
        batch_size=4,
        eval_batch_size=5,
        max_length=512,
        **kw,
    )
    dm.processor = processor
    return dm


def test_train_batch_labels_cover_exactly_the_target(world, policy):
    dm = _dm(world, policy.processor)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    tok = policy.processor.tokenizer
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        target = labels[labels != IGNORE_INDEX]
        text = tok.decode(target)
        assert text.startswith("### Image Description:") and text.endswith(end_of_turn(tok))
        # Labels are a suffix of the real tokens: prompt tokens never carry loss.
        n = int(mask.sum())
        assert torch.equal(ids[n - len(target) : n], target)
        assert (labels[: n - len(target)] == IGNORE_INDEX).all() and (labels[n:] == IGNORE_INDEX).all()
    assert batch["pixel_values"].shape[0] == 4 * 64  # 4 images x 8x8 patches
    assert batch["num_truncated"] == 0


def test_eval_batches_carry_records(world, policy):
    dm = _dm(world, policy.processor, val_limit=7)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert [len(b["records"]) for b in batches] == [5, 2]
    assert isinstance(batches[0]["records"], RecordBatch)
    assert batches[0]["prompts"]["attention_mask"][:, -1].all()  # left padding


def test_long_targets_are_cut_and_counted(world, policy):
    dm = _dm(world, policy.processor)
    # Prompts are 98-110 tokens and targets ~100: every row is cut, whichever rows the shuffle draws
    # first (at 110 a 110-token prompt would be an error: the draw depends on the global RNG state).
    dm.max_length = 125
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[1] == 125 and int(batch["num_truncated"]) == 4


def test_prompt_longer_than_limit_is_an_error_naming_the_row(world, policy):
    dm = _dm(world, policy.processor)
    dm.max_length = 50
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"train\.jsonl:row \d+.*max_prompt_length"):
        next(iter(dm.train_dataloader()))


def test_rows_without_targets_fail_at_setup(world, policy, tmp_path):
    rows = [json.loads(line) for line in (world / "train.jsonl").read_text().splitlines()[:3]]
    rows[1]["response"] = None
    for row in rows:
        row["images"] = [str(world / row["images"][0])]
    path = tmp_path / "no_target.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dm = SFTDataModule(train_files=[str(path)], image_root=str(world))
    dm.processor = policy.processor
    with pytest.raises(RecordError, match=r"no_target\.jsonl:row 2: field 'response'"):
        dm.setup("fit")


def test_duplicate_qids_across_files_and_missing_train_files(world, policy):
    dm = SFTDataModule(train_files=[str(world / "train.jsonl"), str(world / "train.jsonl")])
    dm.processor = policy.processor
    with pytest.raises(RecordError, match="duplicate qid"):
        dm.setup("fit")
    empty = SFTDataModule(val_files=[str(world / "val.jsonl")])
    empty.processor = policy.processor
    with pytest.raises(ValueError, match="train_files"):
        empty.setup("fit")
