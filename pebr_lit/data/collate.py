"""Turn records into model inputs with a Hugging Face processor: prompt batches and SFT batches.

Prompts are left-padded so that generated tokens start at one column for the whole batch; SFT
examples are the prompt's ids followed by the target's ids, right-padded, with the loss on the
assistant turn only. Prompt and target are tokenised separately and concatenated, so the prompt
part of an SFT example is exactly what the policy sees at generation time.

Left out on purpose: reading files (``data.records``), batch types (``data.batches``), DataLoaders and
which records go in them (``data.loaders``, the DataModules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pebr_lit.data.batches import RecordBatch
from pebr_lit.data.records import Record
from pebr_lit.data.sources import RecordError
from pebr_lit.format.prompts import InstructionPrompt, Prompt
from pebr_lit.format.response import ImageCountError

IGNORE_INDEX = -100


def end_of_turn(tokenizer: Any) -> str:
    """The token that closes an assistant turn: ``<|im_end|>`` for Qwen chat models, else eos."""
    token = "<|im_end|>"
    if token in tokenizer.get_vocab():
        return token
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither <|im_end|> nor an eos token to end the assistant turn.")
    return tokenizer.eos_token


def user_messages(prompt: Prompt, problem: str, num_images: int, source: str) -> list[dict[str, Any]]:
    """``prompt``'s messages for one row; image places that do not match its images are a ``RecordError``
    naming ``source`` ("<file>:row <n>") and the field ``problem``."""
    try:
        return prompt.messages(problem, num_images)
    except ImageCountError as e:
        raise RecordError(source, e.problem, e.fix[:1].upper() + e.fix[1:], "problem") from None


def check_prompts(records: Sequence[Any], prompt: Prompt) -> None:
    """Build every record's (or benchmark item's) user turn once, so a marker/image mismatch fails at setup,
    not mid-epoch."""
    for r in records:
        user_messages(prompt, r.problem, len(r.images), r.source or f"qid {r.qid!r}")


def prompt_texts(
    processor: Any,
    problems: Sequence[str],
    image_counts: Sequence[int],
    prompt: Prompt | None = None,
    sources: Sequence[str] | None = None,
) -> list[str]:
    """Chat-template strings that end where the assistant's answer begins; ``prompt`` null = ``InstructionPrompt()``."""
    prompt = prompt if prompt is not None else InstructionPrompt()
    return [
        processor.apply_chat_template(
            user_messages(prompt, p, k, sources[i] if sources else f"prompt {i}"),
            tokenize=False,
            add_generation_prompt=True,
        )
        for i, (p, k) in enumerate(zip(problems, image_counts))
    ]


def encode_prompts(
    processor: Any,
    problems: Sequence[str],
    images: Sequence[Sequence[Any]],
    prompt: Prompt | None = None,
    max_prompt_length: int | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Left-padded prompt batch: ``input_ids``/``attention_mask`` ``[B, P]`` plus image tensors.

    Rows may mix images and none (text-only rows); a batch without any image has no image tensors.
    """
    texts = prompt_texts(processor, problems, [len(x) for x in images], prompt, sources)
    flat = [img for row in images for img in row]
    processor.tokenizer.padding_side = "left"
    batch = processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
    if max_prompt_length is not None:
        lengths = batch["attention_mask"].sum(dim=1)  # [B]
        for i, n in enumerate(lengths.tolist()):
            if n > max_prompt_length:
                where = sources[i] if sources else f"prompt {i}"
                raise ValueError(
                    f"{where}: prompt is {n} tokens (image tokens included), above max_prompt_length="
                    f"{max_prompt_length}. Raise max_prompt_length or lower the processor's max_pixels."
                )
    return dict(batch)


def encode_sft(
    processor: Any,
    problems: Sequence[str],
    images: Sequence[Sequence[Any]],
    responses: Sequence[str],
    max_length: int,
    prompt: Prompt | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Right-padded SFT batch with ``labels`` = -100 on prompt and padding.

    A target longer than the room left after its prompt is cut at ``max_length`` (its end-of-turn
    token is then lost, which is counted in ``num_truncated``); a prompt alone longer than
    ``max_length`` is an error, since cutting it would cut image tokens.
    """
    prompts = encode_prompts(processor, problems, images, prompt, max_prompt_length=max_length - 1, sources=sources)
    tok = processor.tokenizer
    eot = end_of_turn(tok)
    targets = tok([r + eot for r in responses], add_special_tokens=False)["input_ids"]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows, labels, type_rows, truncated = [], [], [], 0
    for i, target in enumerate(targets):
        keep = prompts["attention_mask"][i].bool()
        prompt_ids = prompts["input_ids"][i][keep].tolist()
        room = max_length - len(prompt_ids)
        truncated += len(target) > room
        target = target[:room]
        rows.append(prompt_ids + target)
        labels.append([IGNORE_INDEX] * len(prompt_ids) + target)
        if "mm_token_type_ids" in prompts:
            type_rows.append(prompts["mm_token_type_ids"][i][keep].tolist() + [0] * len(target))
    width = max(len(r) for r in rows)

    def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
        return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)

    batch: dict[str, torch.Tensor] = {
        "input_ids": pad(rows, pad_id),  # [B, L]
        "attention_mask": pad([[1] * len(r) for r in rows], 0),  # [B, L]
        "labels": pad(labels, IGNORE_INDEX),  # [B, L]
        "num_truncated": torch.tensor(truncated),
    }
    if type_rows:
        batch["mm_token_type_ids"] = pad(type_rows, 0)
    for key in ("pixel_values", "image_grid_thw"):
        if key in prompts:
            batch[key] = prompts[key]
    return batch


def collate_sft(records: list[Record], processor: Any, max_length: int, prompt: Prompt) -> dict[str, Any]:
    """Records with targets -> an SFT batch (see ``collate.encode_sft``)."""
    return encode_sft(
        processor,
        [r.problem for r in records],
        [r.load_images() for r in records],
        [r.response or "" for r in records],
        max_length=max_length,
        prompt=prompt,
        sources=[r.source for r in records],
    )


def collate_prompts(
    records: list[Record], processor: Any, max_prompt_length: int | None, prompt: Prompt
) -> dict[str, Any]:
    """Records -> ``{"prompts": left-padded inputs, "records": RecordBatch}``."""
    prompts = encode_prompts(
        processor,
        [r.problem for r in records],
        [r.load_images() for r in records],
        prompt=prompt,
        max_prompt_length=max_prompt_length,
        sources=[r.source for r in records],
    )
    return {"prompts": prompts, "records": RecordBatch(records)}
