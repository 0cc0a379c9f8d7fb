"""EvalDataModule: one ``test`` DataLoader of generation prompts per benchmark of the attached ``EvalModule``.

The benchmarks (paths, limits, adapters) are configured once, on the module
(``model.init_args.benchmarks``); this DataModule reads them from the module at ``setup``
(``data.contracts.BenchmarkSource``); the policy's processor is linked by the CLI or taken from the
module (``data.contracts.ProcessorSource``), as in ``SFTDataModule``. Loader ``i`` serves benchmark
``i``; batches are ``{"prompts": left-padded inputs, "records": RecordBatch of BenchmarkItem}``.
Under several processes each question goes to exactly one rank (``data.loaders.eval_loader``).
Questions an interrupted run already answered (``EvalModule.answered``) ride along a batch as
``"answered"`` without a prompt: the module reuses their answers instead of generating.

Left out on purpose: reading benchmark files (the adapters) and scoring (``EvalModule``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from pebr_lit.data.batches import RecordBatch, RecordDataset
from pebr_lit.data.collate import check_prompts, collate_prompts
from pebr_lit.data.contracts import BenchmarkSource, processor_for, served_module
from pebr_lit.data.loaders import eval_loader
from pebr_lit.eval.benchmarks.base import BenchmarkItem
from pebr_lit.format.prompts import InstructionPrompt, Prompt


class EvalDataModule(L.LightningDataModule):
    """Prompts for benchmark evaluation (``python cli.py test``).

    Args:
        batch_size: Prompts per generation batch (per device).
        max_prompt_length: Longest prompt in tokens (image tokens included); null = no limit.
        num_workers: DataLoader worker processes (image decoding and tokenisation run there).
        prompt: How a benchmark prompt becomes the user turn (``pebr_lit.format.prompts``); null =
            InstructionPrompt() (``init_args: {instruction: ""}`` for the benchmark prompt alone).
        processor: The policy's processor; the CLI links it from the model; null = the attached module's at setup.
    """

    def __init__(
        self,
        batch_size: int = 16,
        max_prompt_length: int | None = None,
        num_workers: int = 0,
        prompt: Prompt | None = None,
        processor: Any = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(
                f"EvalDataModule.batch_size={batch_size!r}: must be >= 1. Use e.g. 16, lower if memory runs out."
            )
        self.batch_size = batch_size
        self.max_prompt_length = max_prompt_length
        self.num_workers = num_workers
        self.prompt = prompt if prompt is not None else InstructionPrompt()
        self.processor = processor
        self.datasets: list[RecordDataset] = []
        self.names: list[str] = []

    def setup(self, stage: str) -> None:
        if stage != "test":
            raise ValueError(
                f"EvalDataModule serves benchmark prompts for `test` only, not `{stage}`: "
                "run `python cli.py test --config configs/eval/<benchmark>.yaml`."
            )
        benchmarks = self._module().benchmarks
        if not benchmarks:
            raise ValueError("EvalDataModule: the module's benchmarks are empty. List at least one (configs/eval/).")
        self.processor = processor_for(self)
        if not self.datasets:
            self.datasets = [RecordDataset(b.items()) for b in benchmarks]
            for b, ds in zip(benchmarks, self.datasets):  # which files gave the questions (adapters that say so)
                if files := getattr(b, "files_read", None):
                    left = getattr(b, "files_left", None)
                    rank_zero_info(
                        f"{b.name}: {len(ds)} questions from {', '.join(str(f) for f in files)}"
                        + (f" (not read: {', '.join(left)})" if left else "")
                    )
            for dataset in self.datasets:  # a marker/image mismatch fails here, before any generation
                check_prompts(dataset.records, self.prompt)
            self.names = [b.name for b in benchmarks]

    def _module(self) -> BenchmarkSource:
        return served_module(
            self, BenchmarkSource, "Serve an EvalModule (model: pebr_lit.modules.evaluation.EvalModule)."
        )

    def test_dataloader(self) -> list[DataLoader]:
        module = self._module()
        loaders = []
        for i, (ds, name) in enumerate(zip(self.datasets, self.names)):
            collate: Any = partial(
                collate_unanswered,
                answered=module.answered(i),
                processor=self.processor,
                max_prompt_length=self.max_prompt_length,
                prompt=self.prompt,
            )
            loaders.append(eval_loader(ds, self.batch_size, collate, self.num_workers, self.trainer, f"test[{name}]"))
        return loaders


def collate_unanswered(items: list[BenchmarkItem], answered: frozenset[int], **kwargs: Any) -> dict[str, Any]:
    """Prompts for the items not yet answered (``collate_prompts``); the others under ``"answered"``, unencoded."""
    todo = [item for item in items if item.index not in answered]
    batch = collate_prompts(todo, **kwargs) if todo else {"prompts": None, "records": RecordBatch([])}
    return {**batch, "answered": RecordBatch([item for item in items if item.index in answered])}
