"""SamplingWriter: resumable, exactly-once JSONL results of dataset-level difficulty sampling.

``python cli.py predict --config configs/demo/sample.yaml`` answers every question n times
(``SFTModule.predict_step``); this callback appends one row per question,
``{"qid", "n", "n_correct", "pass_rate", "correct", "responses"?, "format"?}``, to its process's shard
``<stem>.rank<k>.jsonl`` (flushed and fsynced per batch), and after a successful run rank 0 merges
the shards into ``output_path``. Rerun the same command after an interruption (even kill -9) and it samples only the
questions without a complete row in ``output_path`` or any shard; a torn last line is cut off and
its question sampled again (the rules are in ``pebr_lit.data.samples``).

Coupling: in ``setup`` (after the DataModule's ``setup``, before any batch is built) this writer
reads what is on disk and sets ``datamodule.predict_skip_qids``, so skipped questions cost no
generation; ``datamodule.predict_qids`` gives the full question list for the counts and the checks.
Lightning's predict progress bar then counts the remaining batches, with an ETA.

Left out on purpose: generating and grading (``SFTModule.predict_step``, which grades as validation does,
through ``modules.generation_metrics``), the file format and merge rules (``data.samples``), and
turning pass rates into tiers (``data.tiers``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from pebr_lit.data.samples import (
    append_rows,
    load_samples,
    make_row,
    merge_samples,
    open_shard,
    shard_path,
)


class SamplingWriter(BasePredictionWriter):
    """Write per-question pass rates, resumably; see the module docstring.

    Args:
        output_path: Merged results file (JSONL); each process appends to ``<stem>.rank<k>.jsonl`` beside it.
        keep_responses: Also store every response text and its format flag (larger files, for inspection).
    """

    def __init__(self, output_path: str, keep_responses: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output_path = Path(output_path)
        self.keep_responses = keep_responses
        self._handle: BinaryIO | None = None
        self._written: set[str] = set()
        self._qids: list[str] = []
        self._sizes: set[int] = set()  # n of the rows on disk; a rerun must sample as many per question

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "predict_skip_qids"):
            raise TypeError(
                "SamplingWriter needs a DataModule with predict_skip_qids/predict_qids "
                "(pebr_lit.data.sft_datamodule.SFTDataModule) to skip finished questions."
            )
        self._qids = datamodule.predict_qids
        rows = load_samples(self.output_path)
        unknown = rows.keys() - set(self._qids)
        if unknown:
            raise ValueError(
                f"{self.output_path}: {len(unknown)} sampled qids are not in data.predict_files "
                f"(e.g. {sorted(unknown)[:3]}): the file belongs to another question set. "
                "Give another trainer.callbacks output_path or delete the old results."
            )
        self._written = set(rows)
        self._sizes = {row["n"] for row in rows.values()}
        datamodule.predict_skip_qids = frozenset(self._written)
        # The rows live on disk; Lightning's in-memory copy would grow with the data set.
        trainer.predict_loop.return_predictions = False
        left = len(self._qids) - len(self._written)
        rank_zero_info(
            f"SamplingWriter: {len(self._written)} of {len(self._qids)} questions already in "
            f"{self.output_path} (and shards); sampling the remaining {left}."
        )

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = shard_path(self.output_path, trainer.global_rank)
        self._handle, cut = open_shard(path)
        if cut:  # on any rank: each process repairs its own shard
            warnings.warn(
                f"SamplingWriter: cut a torn last line ({cut} bytes of an interrupted write) from {path}; "
                "its question is sampled again.",
                stacklevel=1,
            )

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        rows = []
        for item in prediction:
            qid = item["qid"]
            if qid in self._written:  # the DataModule filters these out; reaching here is a bug
                raise RuntimeError(
                    f"SamplingWriter: qid {qid!r} is already in {self.output_path}; refusing to write it twice."
                )
            row = make_row(
                qid,
                item["correct"],
                item["responses"] if self.keep_responses else None,
                item["format"] if self.keep_responses else None,
            )
            if self._sizes and row["n"] not in self._sizes:
                raise ValueError(
                    f"{self.output_path}: rows on disk have n={sorted(self._sizes)} responses per "
                    f"question, this run samples n={row['n']}; pass rates would not be comparable. "
                    "Sample as many as before, or give another output_path."
                )
            rows.append(row)
        append_rows(self._handle, rows)
        self._written.update(row["qid"] for row in rows)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._close()  # rows already written are durable; the rerun resumes after them

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning calls this after a successful run only, on every rank, also on a rank whose predict
        # loop had no batch (and so no on_predict_end): the one safe place for a barrier.
        if stage != "predict":
            return
        self._close()
        trainer.strategy.barrier("sampling_writer_merge")  # every shard closed before rank 0 merges
        self._finish(trainer)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _finish(self, trainer: L.Trainer) -> None:
        if trainer.global_rank != 0:
            return
        rows = merge_samples(self.output_path, order=self._qids)
        missing = len(self._qids) - len(rows)
        if missing:
            rank_zero_warn(
                f"SamplingWriter: {missing} of {len(self._qids)} questions are not sampled yet "
                f"(a limited run); rerun the same command to finish {self.output_path}."
            )
        else:
            rank_zero_info(f"SamplingWriter: all {len(rows)} questions sampled -> {self.output_path}")


__all__ = ["SamplingWriter"]
