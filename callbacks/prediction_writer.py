"""JsonlPredictionWriter: append the rows that ``predict_step`` returns to a JSONL file.

Each batch's rows are written and flushed as soon as the batch finishes, one JSON object per line,
so a long prediction run loses at most the batch in flight. Under several processes each rank writes
``<stem>.rank<k>.jsonl``.

Left out on purpose: skipping rows already written on a rerun (the sampling writer of the
difficulty-sampling stage does that) and any grading (the module's ``predict_step`` does it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter


class JsonlPredictionWriter(BasePredictionWriter):
    """Write predictions to JSONL.

    Args:
        output_path: File to write; its directory is created.
        overwrite: Start a fresh file (true) or append to an existing one (false).
    """

    def __init__(self, output_path: str, overwrite: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output_path = Path(output_path)
        self.overwrite = overwrite
        self._handle: Any = None

    def path_for_rank(self, rank: int, world_size: int) -> Path:
        if world_size == 1:
            return self.output_path
        return self.output_path.with_name(f"{self.output_path.stem}.rank{rank}{self.output_path.suffix}")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self.path_for_rank(trainer.global_rank, trainer.world_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w" if self.overwrite else "a", encoding="utf-8")

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        for row in prediction:
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.on_predict_end(trainer, pl_module)
