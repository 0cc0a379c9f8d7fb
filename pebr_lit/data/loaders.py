"""Evaluation DataLoaders: a rank's slice of the records (``RankSlice``) and the loader built on it.

Under several processes each record goes to one rank, and a rank may get none (prediction writers
cope with an empty rank).

Left out on purpose: which records (the DataModules) and how they are tokenised (``data.collate``).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def eval_loader(
    dataset: Dataset, batch_size: int, collate: Any, num_workers: int, trainer: Any, split: str
) -> DataLoader:
    """An evaluation DataLoader in file order; under several processes each record goes to exactly one rank.

    Lightning's default DistributedSampler pads the last round with repeated records, which biases
    the logged means; ranks may instead differ by one record, which sync_dist's epoch-end mean allows.
    """
    sampler = None
    world_size = trainer.world_size if trainer is not None else 1
    if world_size > 1:
        if len(dataset) < world_size:
            raise ValueError(
                f"{split}: {len(dataset)} records for {world_size} processes; every process needs at least one "
                "(raise data.val_limit or add records)."
            )
        sampler = UnrepeatedDistributedSampler(
            dataset, num_replicas=world_size, rank=trainer.global_rank, shuffle=False
        )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate, num_workers=num_workers)


class RankSlice(DistributedSampler):
    """Records ``rank, rank + W, ...`` in order: each on exactly one rank, and a rank may get none.

    For predict, which runs no collective per step: a resumed sampling run can have fewer questions
    left than processes, which Lightning's own unrepeated sampler rejects (it wants one per rank).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, self.total_size, self.num_replicas))
