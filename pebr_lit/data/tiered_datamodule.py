"""TieredDataModule: a GRPO stage's prompts chosen by difficulty tier from the folder ``data.tiers`` wrote.

``tiers_dir`` is the output of ``python -m pebr_lit.data.tiers`` (``easy.jsonl``, ``medium.jsonl``,
``hard.jsonl``); ``tiers`` names the ones whose questions form the training pool, by default the
stage's own (the module's ``default_tiers``, ``data.contracts.TierDefaults``: stage 1 Easy, stage 2
Medium). ``val_size`` or ``val_fraction`` holds out a seeded part of that pool for validation when no
``val_files`` are given: held-out questions are never trained on, and the same ``seed`` and files give
the same hold-out on every run (a resumed stage included). Everything else, the resumable training
stream among it, is ``PromptDataModule``'s.

Left out on purpose: sampling and tiering (``callbacks.sampling_writer``, ``data.tiers``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pebr_lit.data.contracts import TierDefaults, served_module
from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.text_only import load_checked
from pebr_lit.data.tiers import TIERS

#: Extra seed words of the hold-out draw: three words, so it never equals the stream's ``[seed, epoch]``.
HOLDOUT_KEY = (0, 0x401D)


def holdout_split(n: int, seed: int, size: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices), both in ascending order: ``size`` of ``range(n)`` drawn with ``seed``."""
    held = np.random.default_rng([seed, *HOLDOUT_KEY]).permutation(n)[:size]
    held_set = set(held.tolist())
    return [i for i in range(n) if i not in held_set], sorted(held_set)


class TieredDataModule(PromptDataModule):
    """Difficulty-tier files -> prompt batches for a GRPO stage, with an optional held-out split.

    Args:
        tiers_dir: Folder written by ``python -m pebr_lit.data.tiers`` (holds ``<tier>.jsonl``).
        tiers: Tiers whose questions are the training pool, among easy/medium/hard; null = the stage's default
            (stage 1: [easy], stage 2: [medium]).
        val_size: Hold out this many pool questions for validation (needs no val_files); null = none.
        val_fraction: Hold out this share of the pool for validation, rounded up (needs no val_files); null = none.
        **kwargs: The other arguments of ``PromptDataModule`` (all but ``train_files``).
    """

    def __init__(
        self,
        tiers_dir: str,
        tiers: list[str] | None = None,
        val_size: int | None = None,
        val_fraction: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(train_files=None, **kwargs)
        if tiers is not None:
            unknown = [t for t in tiers if t not in TIERS]
            if unknown or not tiers or len(set(tiers)) != len(tiers):
                raise ValueError(
                    f"TieredDataModule.tiers={tiers!r}: unknown, repeated or none. "
                    f"Name each tier once, among {list(TIERS)} (e.g. tiers: [medium])."
                )
        if val_size is not None and val_fraction is not None:
            raise ValueError(
                f"TieredDataModule.val_size={val_size!r}, val_fraction={val_fraction!r}: both hold out validation "
                "questions. Set val_size or val_fraction, not both."
            )
        if val_size is not None and val_size < 1:
            raise ValueError(
                f"TieredDataModule.val_size={val_size!r}: must be >= 1 questions. Use null to hold none out."
            )
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(
                f"TieredDataModule.val_fraction={val_fraction!r}: must be in (0, 1). "
                "Give the share of the pool to hold out, e.g. 0.1, or null for none."
            )
        if (val_size is not None or val_fraction is not None) and self.files["validate"]:
            raise ValueError(
                f"TieredDataModule.val_files={self.files['validate']!r}: val_files and a held-out split "
                "(val_size/val_fraction) both give validation records. Keep one."
            )
        self.tiers_dir = tiers_dir
        self.tiers = list(tiers) if tiers is not None else None
        self.val_size = val_size
        self.val_fraction = val_fraction

    @property
    def holds_out(self) -> bool:
        """True when validation records are a held-out part of the pool."""
        return self.val_size is not None or self.val_fraction is not None

    def tier_files(self) -> list[Path]:
        """``<tiers_dir>/<tier>.jsonl`` of each selected tier."""
        return [Path(self.tiers_dir) / f"{tier}.jsonl" for tier in self.selected_tiers()]

    def selected_tiers(self) -> list[str]:
        """``tiers``, or else the attached module's ``default_tiers``."""
        if self.tiers is not None:
            return self.tiers
        fix = "Set data.init_args.tiers (e.g. [medium])."
        module = served_module(self, TierDefaults, fix)
        default = list(module.default_tiers)
        if not default:
            raise ValueError(f"{type(module).__name__}.default_tiers is empty: {fix.lower()}")
        return default

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and "fit" not in self.records and (stage == "fit" or self.holds_out):
            self._load_pool()
        super().setup(stage)

    def _load_pool(self) -> None:
        pool, text_only = [], 0
        for tier, path in zip(self.selected_tiers(), self.tier_files()):
            if not path.is_file():
                raise ValueError(
                    f"{path}: no tier file for tier {tier!r}. Run difficulty sampling and tiering first "
                    f"(python cli.py predict --config configs/demo/sample.yaml, then python -m pebr_lit.data.tiers "
                    f"--out {self.tiers_dir} ...), or point data.init_args.tiers_dir at the folder they wrote."
                )
            records = load_checked(self, [str(path)], f"tier {tier}", extra=self.check_prompt, allow_empty=True)
            text_only += self.text_only_rows.pop(f"tier {tier}")
            if not records:
                raise ValueError(
                    f"{path}: tier {tier!r} holds no questions (see {Path(self.tiers_dir) / 'summary.md'}). "
                    "Pick another tier in data.init_args.tiers, re-tier with other "
                    "--easy-min-pass-rate/--hard-max-pass-rate, or "
                    "sample more questions."
                )
            pool += records
        self.text_only_rows["fit"] = text_only  # the pool's, held-out part included
        if self.holds_out:
            size = self.val_size if self.val_size is not None else math.ceil(self.val_fraction * len(pool))
            if size >= len(pool):
                raise ValueError(
                    f"holding out {size} of the {len(pool)} questions of tiers {self.selected_tiers()} "
                    "leaves none to train on: lower data.init_args.val_size/val_fraction."
                )
            train, held = holdout_split(len(pool), self.seed, size)
            held_records = [pool[i] for i in held]
            self.records["validate"] = held_records[: self.val_limit] if self.val_limit is not None else held_records
            pool = [pool[i] for i in train]
        self.records["fit"] = pool
