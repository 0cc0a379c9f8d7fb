"""SFTDataModule: records from files -> SFT training batches and generation batches for evaluation.

Training batches are prompt + target token ids with labels on the assistant turn; validation, test
and predict batches are left-padded prompts plus the records themselves (answers, keywords) for
grading generated responses. Tokenisation happens in the DataLoader workers (``data.collate``) with
the policy's own processor: linked from the model by the CLI, else taken from the attached module at
``setup`` (``data.contracts.ProcessorSource``).
A resumable prediction writer (``callbacks.sampling_writer``) leaves out questions it has already
written by setting ``predict_skip_qids`` in its ``setup`` hook, before any predict batch is built;
under several processes each predict record goes to one rank (``RankSlice``), and a rank may get none.

Left out on purpose: difficulty tiers and RL prompt batches (``data.tiers`` / tiered DataModule).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from pebr_lit.data.bad_records import ON_BAD_RECORD_DEFAULT, OnBadRecord, check_on_bad_record
from pebr_lit.data.batches import RecordDataset
from pebr_lit.data.collate import check_prompts, collate_prompts, collate_sft
from pebr_lit.data.contracts import processor_for
from pebr_lit.data.image_checks import MIN_SIDE
from pebr_lit.data.loaders import RankSlice, eval_loader
from pebr_lit.data.records import Record
from pebr_lit.data.sources import RecordError
from pebr_lit.data.text_only import TEXT_ONLY_DEFAULT, TextOnly, check_text_only, load_checked
from pebr_lit.data.validation import checks_for
from pebr_lit.format.prompts import InstructionPrompt, Prompt


class SFTDataModule(L.LightningDataModule):
    """Record files for warm-up SFT and generation-based evaluation.

    Args:
        train_files: Record files (JSONL/JSON/parquet/HF datasets dir) with a ``response`` target per row.
        val_files: Held-out record files; validation generates answers and grades them.
        test_files: Record files for ``test``; graded like validation.
        predict_files: Record files for ``predict``; only prompts are needed.
        image_root: Directory that relative image paths start from; null = each data file's directory.
        batch_size: Training examples per step (per device).
        eval_batch_size: Prompts per generation batch in validation/test/predict.
        max_length: Longest SFT example in tokens (prompt incl. image tokens + target); longer targets are cut.
        max_prompt_length: Longest prompt in tokens for generation; null = no limit.
        val_limit: Use only the first N validation records (generation is slow); null = all.
        num_workers: DataLoader worker processes (image decoding and tokenisation run there).
        prompt: How a question becomes the user turn (``pebr_lit.format.prompts``); null = InstructionPrompt().
        text_only: Rows with ``images: []``: keep (text-only prompts), skip (drop and count) or error
            (``pebr_lit.data.text_only``).
        check_image_files: Open every image at setup (exists, header decodes, size allowed), so a bad one fails early.
        on_bad_record: Bad rows found at setup: error (refuse the run, every one listed) or skip (leave them out,
            counted and listed) (``pebr_lit.data.bad_records``).
        bad_records_dir: Folder for the list of bad rows (``<split>.jsonl``); null = ``<log dir>/bad_records``.
        allow_outside_root: Accept image paths outside the image root (``..``, absolute paths elsewhere).
        min_image_side: Shortest image side allowed at setup, in pixels (the authors: 28; 0 = no floor).
        min_image_pixels: Smallest image area allowed at setup (refused, not resized); null = no bound.
        max_image_pixels: Largest image area allowed at setup (refused, not resized); null = no bound.
        processor: The policy's processor; the CLI links it from the model; null = the attached module's at setup.
    """

    def __init__(
        self,
        train_files: list[str] | None = None,
        val_files: list[str] | None = None,
        test_files: list[str] | None = None,
        predict_files: list[str] | None = None,
        image_root: str | None = None,
        batch_size: int = 16,
        eval_batch_size: int = 32,
        max_length: int = 1024,
        max_prompt_length: int | None = None,
        val_limit: int | None = None,
        num_workers: int = 0,
        prompt: Prompt | None = None,
        text_only: TextOnly = TEXT_ONLY_DEFAULT,
        check_image_files: bool = True,
        on_bad_record: OnBadRecord = ON_BAD_RECORD_DEFAULT,
        bad_records_dir: str | None = None,
        allow_outside_root: bool = False,
        min_image_side: int = MIN_SIDE,
        min_image_pixels: int | None = None,
        max_image_pixels: int | None = None,
        processor: Any = None,
    ) -> None:
        super().__init__()
        for field, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ValueError(
                    f"{type(self).__name__}.{field}={value!r}: must be >= 1 prompts per batch. "
                    "Use e.g. 8, lower if memory runs out."
                )
        self.files = {
            "fit": train_files or [],
            "validate": val_files or [],
            "test": test_files or [],
            "predict": predict_files or [],
        }
        self.image_root = image_root
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.val_limit = val_limit
        self.num_workers = num_workers
        self.prompt = prompt if prompt is not None else InstructionPrompt()
        self.text_only = check_text_only(type(self).__name__, text_only)
        #: Text-only rows met per split at ``setup``: kept or skipped, as ``text_only`` says.
        self.text_only_rows: dict[str, int] = {}
        self.check_image_files = check_image_files
        self.on_bad_record = check_on_bad_record(type(self).__name__, on_bad_record)
        self.bad_records_dir = bad_records_dir
        self.record_checks = checks_for(
            type(self).__name__,
            allow_outside_root,
            check_image_files,
            min_image_side,
            min_image_pixels,
            max_image_pixels,
        )
        #: Bad rows left out per split at ``setup`` (``on_bad_record: skip``; each listed in ``bad_records_dir``).
        self.bad_records: dict[str, int] = {}
        self.processor = processor
        #: Qids that ``predict`` leaves out (results already on disk). Set by a resumable writer's
        #: ``setup`` hook, after this module's ``setup`` and before ``predict_dataloader``.
        self.predict_skip_qids: frozenset[str] = frozenset()
        self.datasets: dict[str, RecordDataset] = {}

    def setup(self, stage: str) -> None:
        self.processor = processor_for(self)
        wanted = {"fit": ("fit", "validate"), "validate": ("validate",), "test": ("test",), "predict": ("predict",)}[
            stage
        ]
        for split in wanted:
            if split in self.datasets or not self.files[split]:
                continue
            limit = self.val_limit if split == "validate" else None
            needs_target = split == "fit"
            records = load_checked(self, self.files[split], split, limit, partial(self._check, needs_target))
            self.datasets[split] = RecordDataset(records)
        if stage == "fit" and not self.datasets.get("fit"):
            raise ValueError(
                f"SFTDataModule.train_files={self.files['fit']!r}: fit needs records. "
                "Give at least one record file with SFT targets in data.train_files."
            )
        if stage in ("test", "predict") and stage not in self.datasets:
            raise ValueError(
                f"SFTDataModule.{stage}_files={self.files[stage]!r}: {stage} needs records. "
                f"Give at least one record file in data.{stage}_files."
            )

    def _check(self, needs_target: bool, record: Record) -> None:
        """The per-record checks of the validation pass beyond the record schema: prompt markers, the SFT target."""
        if needs_target and not record.response:
            raise RecordError(
                record.source, "no SFT target", "Every training row needs a PeBR-format 'response' for SFT.", "response"
            )
        check_prompts([record], self.prompt)

    def _loader(self, split: str, collate: Any, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _prompt_collate(self) -> Any:
        return partial(
            collate_prompts,
            processor=self.processor,
            max_prompt_length=self.max_prompt_length,
            prompt=self.prompt,
        )

    def train_dataloader(self) -> DataLoader:
        collate = partial(collate_sft, processor=self.processor, max_length=self.max_length, prompt=self.prompt)
        return self._loader("fit", collate, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if "validate" not in self.datasets:
            return []
        return self._eval("validate", self.datasets["validate"])

    def test_dataloader(self) -> DataLoader:
        return self._eval("test", self.datasets["test"])

    def _eval(self, split: str, dataset: Dataset) -> DataLoader:
        return eval_loader(dataset, self.eval_batch_size, self._prompt_collate(), self.num_workers, self.trainer, split)

    @property
    def predict_qids(self) -> list[str]:
        """Every qid of the predict files, in file order, skipped or not (after ``setup("predict")``)."""
        return [r.qid for r in self.datasets["predict"].records]

    def predict_dataloader(self) -> DataLoader:
        dataset = self.datasets["predict"]
        if self.predict_skip_qids:
            dataset = RecordDataset([r for r in dataset.records if r.qid not in self.predict_skip_qids])
        world_size = self.trainer.world_size if self.trainer is not None else 1
        sampler = None
        if world_size > 1:
            sampler = RankSlice(dataset, world_size, self.trainer.global_rank)
            # Read by Lightning's predict loop right after this call: a rank without batches just idles.
            self.allow_zero_length_dataloader_with_multiple_devices = True
        collate = self._prompt_collate()
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
