"""PromptStream: a seeded, resumable stream of prompt batches for RL stages.

Epoch ``e`` visits the records in the permutation drawn from ``(seed, e)``; batch ``k`` of the stream
is the ``k``-th slice of the concatenated permutations, so the whole stream is a pure function of
``(records, seed, batch size)`` and starting at batch ``k`` needs no other state. Under several
processes each global batch is split into contiguous per-rank slices, so a prompt and all of its
rollouts stay on one rank. DataLoader workers take every ``num_workers``-th batch, which the
DataLoader interleaves back into stream order. A dict batch also carries ``stream_last`` (True on the
stream's final batch), so a consumer that gathers several batches for one update (online filtering)
knows that no more will come.

Left out on purpose: tokenisation (the collate function) and which records are in the pool (tiers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info


class PromptStream(IterableDataset):
    """Batches of records, ``epochs`` passes over the pool, starting after ``start_batch`` batches.

    Deliberately without ``__len__``: Lightning would count the batches of a resumed epoch against its
    own restored counters; without a length it runs until the stream ends.

    Args:
        records: The pool of records.
        batch_size: Prompts per global batch (all ranks together).
        seed: Seed of the per-epoch permutations.
        epochs: Passes over the pool; the last partial batch of each epoch is dropped.
        start_batch: Global batches already consumed (resuming).
        rank: This process's rank.
        world_size: Number of processes; must divide batch_size.
        collate: Turns a list of records into a batch.
    """

    def __init__(
        self,
        records: Sequence[Any],
        batch_size: int,
        seed: int,
        epochs: float,
        collate: Callable[[list[Any]], Any],
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of processes ({world_size}).")
        if len(records) < batch_size:
            raise ValueError(f"the prompt pool has {len(records)} records, fewer than one batch of {batch_size}.")
        self.records = list(records)
        self.batch_size = batch_size
        self.seed = seed
        self.collate = collate
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = len(self.records) // batch_size
        self.total_batches = math.floor(epochs * self.batches_per_epoch)

    def batch_indices(self, k: int) -> list[int]:
        """Record indices of global batch ``k``, this rank's slice."""
        epoch, offset = divmod(k, self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.records))
        chunk = order[offset * self.batch_size : (offset + 1) * self.batch_size]
        per_rank = self.batch_size // self.world_size
        return chunk[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for k in range(self.start_batch + worker, self.total_batches, workers):
            batch = self.collate([self.records[i] for i in self.batch_indices(k)])
            if isinstance(batch, dict):
                batch["stream_last"] = k == self.total_batches - 1
            yield batch
