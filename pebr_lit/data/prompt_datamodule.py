"""PromptDataModule: prompt batches from record files for the GRPO stages, resumable to the batch.

Training draws from a seeded ``PromptStream`` that starts after the rollout batches the module has
already completed (its ``rollout_batches``, saved in its checkpoints: ``data.contracts.RolloutProgress``),
so a stage resumed with ``--ckpt_path`` neither repeats nor skips prompts. That position means something only
for the same stream, so checkpoints also hold the stream's fingerprint (pool size, a hash of its
qids in order, batch size, seed, epochs) and a resume over another pool or order is refused.
Validation and test batches are the held-out records in file order; under several processes each
record goes to exactly one rank.

Left out on purpose: choosing records by difficulty tier (a tier filter is layered on ``records``),
tokenisation details (``collate``).
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from pebr_lit.data.bad_records import ON_BAD_RECORD_DEFAULT, OnBadRecord, check_on_bad_record
from pebr_lit.data.batches import RecordDataset
from pebr_lit.data.collate import check_prompts, collate_prompts
from pebr_lit.data.contracts import RolloutProgress, processor_for, served_module
from pebr_lit.data.image_checks import MIN_SIDE
from pebr_lit.data.loaders import eval_loader
from pebr_lit.data.prompt_stream import PromptStream
from pebr_lit.data.records import Record
from pebr_lit.data.text_only import TEXT_ONLY_DEFAULT, TextOnly, check_text_only, load_checked
from pebr_lit.data.validation import checks_for
from pebr_lit.format.prompts import InstructionPrompt, Prompt


class PromptDataModule(L.LightningDataModule):
    """Record files -> prompt batches for RL.

    Args:
        train_files: Record files of the training pool (for stage 1: Easy; stage 2: Medium).
        val_files: Held-out record files, graded by generation during validation.
        test_files: Record files for ``test``.
        image_root: Directory that relative image paths start from; null = each file's directory.
        batch_size: Prompts per rollout batch, all processes together; each gets G rollouts.
        eval_batch_size: Prompts per generation batch in validation/test.
        epochs: Passes over the training pool (fractions allowed); the stage ends when they are done.
        seed: Seed of the training order.
        max_prompt_length: Longest prompt in tokens (image tokens included); longer is an error.
        val_limit: Use only the first N validation records; null = all.
        test_limit: Use only the first N test records; null = all.
        num_workers: DataLoader worker processes.
        prompt: How a question becomes the user turn (``pebr_lit.format.prompts``); null = InstructionPrompt().
        text_only: Rows with ``images: []``: keep (text-only prompts), skip (drop and count) or error
            (``pebr_lit.data.text_only``).
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
        image_root: str | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 32,
        epochs: float = 1.0,
        seed: int = 0,
        max_prompt_length: int | None = 2048,
        val_limit: int | None = None,
        test_limit: int | None = None,
        num_workers: int = 0,
        prompt: Prompt | None = None,
        text_only: TextOnly = TEXT_ONLY_DEFAULT,
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
        if epochs <= 0:
            raise ValueError(
                f"{type(self).__name__}.epochs={epochs!r}: must be > 0 passes over the training pool. "
                "Use e.g. 1 (fractions such as 0.5 are allowed)."
            )
        self.files = {"fit": train_files or [], "validate": val_files or [], "test": test_files or []}
        self.image_root = image_root
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.epochs = epochs
        self.seed = seed
        self.max_prompt_length = max_prompt_length
        self.val_limit = val_limit
        self.test_limit = test_limit
        self.num_workers = num_workers
        self.prompt = prompt if prompt is not None else InstructionPrompt()
        self.text_only = check_text_only(type(self).__name__, text_only)
        #: Text-only rows met per split at ``setup``: kept or skipped, as ``text_only`` says.
        self.text_only_rows: dict[str, int] = {}
        self.on_bad_record = check_on_bad_record(type(self).__name__, on_bad_record)
        self.bad_records_dir = bad_records_dir
        self.record_checks = checks_for(
            type(self).__name__, allow_outside_root, True, min_image_side, min_image_pixels, max_image_pixels
        )
        #: Bad rows left out per split at ``setup`` (``on_bad_record: skip``; each listed in ``bad_records_dir``).
        self.bad_records: dict[str, int] = {}
        self.processor = processor
        self.records: dict[str, list[Any]] = {}

    def setup(self, stage: str) -> None:
        self.processor = processor_for(self)
        wanted = {"fit": ("fit", "validate"), "validate": ("validate",), "test": ("test",)}.get(stage, ())
        for split in wanted:
            if split in self.records or not self.files[split]:
                continue
            limit = {"validate": self.val_limit, "test": self.test_limit}.get(split)
            self.records[split] = load_checked(self, self.files[split], split, limit, self.check_prompt)
        if stage == "fit" and not self.records.get("fit"):
            raise ValueError(
                f"{type(self).__name__}.train_files={self.files['fit']!r}: fit needs at least one record. For a GRPO "
                "stage, point it at the tier file written by difficulty sampling (stage 1: easy.jsonl, stage 2: "
                "medium.jsonl)."
            )

    def check_prompt(self, record: Record) -> None:
        """The validation pass's check beyond the record schema: the prompt places the record's images."""
        check_prompts([record], self.prompt)

    def stream_fingerprint(self) -> dict[str, Any]:
        """What the training stream is a function of (``PromptStream``): resuming its position needs the same."""
        records = self.records.get("fit", [])
        qids = hashlib.sha256("\n".join(r.qid for r in records).encode()).hexdigest()[:16]
        return {
            "records": len(records),
            "qids_sha256": qids,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epochs": self.epochs,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"stream": self.stream_fingerprint()} if self.records.get("fit") else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved, now = state_dict.get("stream"), self.stream_fingerprint()
        if not saved or not self.records.get("fit"):
            return  # a checkpoint from before fingerprints, or no training pool in this run
        changed = [k for k in saved if saved[k] != now.get(k) and k != "epochs"]
        if changed:
            diff = ", ".join(f"{k} {saved[k]} -> {now.get(k)}" for k in changed)
            raise ValueError(
                f"the checkpoint was saved over another training stream ({diff}): resuming its position would serve "
                "other prompts. Resume with the same train files, batch_size and seed, or start a new run from its "
                "weights with --model.init_args.init_from <ckpt>."
            )

    def _collate(self) -> Any:
        return partial(
            collate_prompts,
            processor=self.processor,
            max_prompt_length=self.max_prompt_length,
            prompt=self.prompt,
        )

    def train_stream(self, start_batch: int, rank: int = 0, world_size: int = 1) -> PromptStream:
        """The training stream from global batch ``start_batch`` on, this rank's slice."""
        return PromptStream(
            self.records["fit"],
            self.batch_size,
            self.seed,
            self.epochs,
            self._collate(),
            start_batch=start_batch,
            rank=rank,
            world_size=world_size,
        )

    def train_dataloader(self) -> DataLoader:
        fix = "Serve a GRPO module (pebr_lit.modules.perception/reasoning), which counts its rollout batches."
        start = int(served_module(self, RolloutProgress, fix).rollout_batches)
        stream = self.train_stream(start, self.trainer.global_rank, self.trainer.world_size)
        return DataLoader(stream, batch_size=None, num_workers=self.num_workers, persistent_workers=False)

    def _eval_loader(self, split: str) -> DataLoader | list:
        if split not in self.records:
            return []
        return eval_loader(
            RecordDataset(self.records[split]),
            self.eval_batch_size,
            self._collate(),
            self.num_workers,
            self.trainer,
            split,
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("validate")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")
