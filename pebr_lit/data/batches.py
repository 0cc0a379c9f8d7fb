"""Batch types: ``RecordBatch`` (records carried beside their tokens for grading), the record dataset, batch size.

Left out on purpose: tokenisation (``data.collate``) and DataLoaders (``data.loaders``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from pebr_lit.data.records import Record


class RecordBatch:
    """Records riding along a batch; a plain holder so Lightning's device transfer leaves it alone."""

    __slots__ = ("records",)

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)


class RecordDataset(Dataset):
    """A list of records, indexable."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]


def batch_size_of(batch: dict[str, Any]) -> int:
    """Number of examples in an SFT or prompt batch."""
    ids = batch["prompts"]["input_ids"] if "prompts" in batch else batch["input_ids"]
    return int(ids.shape[0]) if isinstance(ids, torch.Tensor) else len(ids)
