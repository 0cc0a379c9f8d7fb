"""A file in the authors' schema (``problem`` with "<image>", ``answer``, ``images``, ``qid``, ``key_words``,
text-only rows among them) loads into the DataModules, and each image's tokens sit where its marker was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.data.sources import RecordError
from pebr_lit.format.prompts import TemplatePrompt

# 112 px -> 16 image tokens, 56 px -> 4 (tests/contract/demo/test_tiny.py::test_image_token_count).
BLOCK = "<|vision_start|>{}<|vision_end|>"
BIG, SMALL = BLOCK.format("<|image_pad|>" * 16), BLOCK.format("<|image_pad|>" * 4)


@pytest.fixture
def authors_file(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (112, 112), (255, 0, 0)).save(tmp_path / "images" / "big.png")
    Image.new("RGB", (56, 56), (0, 0, 255)).save(tmp_path / "images" / "small.png")
    rows = [
        {
            "problem": "<image>How many red squares are there?",
            "answer": "1",
            "images": ["images/big.png"],
            "qid": "a-1",
            "key_words": ["red", "square"],
        },
        {"problem": "What is 3 + 4?", "answer": "7", "images": [], "qid": "a-2", "key_words": []},
        {
            "problem": "First <image> then <image>: which is smaller?",
            "answer": "the second",
            "images": ["images/big.png", "images/small.png"],
            "qid": "a-3",
            "key_words": ["blue"],
        },
    ]
    path = tmp_path / "rl.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def prompt(tmp_path: Path) -> TemplatePrompt:
    path = tmp_path / "format.jinja"
    path.write_text("Reply in four sections.\n{{ content | trim }}\n", encoding="utf-8")
    return TemplatePrompt(str(path))


def _decoded(dm: PromptDataModule, policy) -> tuple[list[str], dict]:
    batch = dm._collate()(dm.records["fit"])
    tok = policy.processor.tokenizer
    texts = [
        tok.decode(ids[mask.bool()])
        for ids, mask in zip(batch["prompts"]["input_ids"], batch["prompts"]["attention_mask"])
    ]
    return texts, batch


def test_markers_become_image_tokens_where_they_stand_and_text_only_rows_train(authors_file, prompt, policy):
    dm = PromptDataModule(train_files=[str(authors_file)], prompt=prompt, processor=policy.processor)
    dm.setup("fit")
    assert [r.qid for r in dm.records["fit"]] == ["a-1", "a-2", "a-3"] and dm.text_only_rows == {"fit": 1}
    texts, batch = _decoded(dm, policy)
    assert all("<image>" not in t for t in texts)  # the marker never reaches the model as text
    assert f"Reply in four sections.\n{BIG}How many red squares are there?" in texts[0]
    assert "Reply in four sections.\nWhat is 3 + 4?" in texts[1] and "<|vision_start|>" not in texts[1]
    assert f"First {BIG} then {SMALL}: which is smaller?" in texts[2]
    assert batch["prompts"]["image_grid_thw"].tolist() == [[1, 8, 8], [1, 8, 8], [1, 4, 4]]
    assert batch["records"].records[1].key_words == ()


def test_sft_datamodule_skips_and_counts_text_only_rows(authors_file, prompt, policy, tmp_path):
    rows = [json.loads(line) for line in authors_file.read_text().splitlines()]
    for r in rows:
        r["response"] = f"### The final answer is: {r['answer']}"
    train = tmp_path / "sft.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dm = SFTDataModule(train_files=[str(train)], prompt=prompt, text_only="skip", processor=policy.processor)
    with pytest.warns(UserWarning, match=rf"fit: skipped 1 text-only row\(s\).*{train}:row 2"):
        dm.setup("fit")
    assert [r.qid for r in dm.datasets["fit"].records] == ["a-1", "a-3"] and dm.text_only_rows == {"fit": 1}
    batch = dm.train_dataloader().collate_fn(dm.datasets["fit"].records)
    assert batch["image_grid_thw"].shape[0] == 3 and batch["num_truncated"] == 0


def test_text_only_error_names_the_row_and_the_option(authors_file, prompt, policy):
    dm = PromptDataModule(train_files=[str(authors_file)], prompt=prompt, text_only="error", processor=policy.processor)
    row = rf"(?s)\n  {authors_file}:row 2: field 'images': empty list.*text_only: keep"
    with pytest.raises(RecordError, match=row):
        dm.setup("fit")


def test_a_marker_count_that_differs_from_the_images_fails_at_setup(authors_file, prompt, policy):
    rows = authors_file.read_text().splitlines()
    bad = json.loads(rows[0])
    bad["problem"] = "<image> and <image>?"
    authors_file.write_text("\n".join([rows[1], json.dumps(bad)]) + "\n", encoding="utf-8")
    dm = PromptDataModule(train_files=[str(authors_file)], prompt=prompt, processor=policy.processor)
    with pytest.raises(
        RecordError, match=rf"\n  {authors_file}:row 2: field 'problem': the prompt holds 2 image marker"
    ):
        dm.setup("fit")
