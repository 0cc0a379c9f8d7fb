"""Text-only rows (``images: []``): the DataModules' ``text_only`` option, and loading record files under it.

The authors' RL pool holds questions without images. ``text_only`` says what a DataModule does with them:

- ``keep`` (the default): load them and train or sample them as text-only prompts, as the authors' loader
  does (EasyR1 renders such a row without image parts and trains on it). Batches may then mix rows with
  and without images; the stage-1 CLIP reward of a text-only row is 0 (``modules.perception``).
- ``skip``: drop them, warn once with their count and the first few rows, and keep the count
  (``LoadedRecords.text_only``; a DataModule's ``text_only_rows``).
- ``error``: refuse them, naming each file and row (all in one message, as any bad row) and this option.

``keep`` is the default because it is the authors' behaviour: skipping changes the training pool that
Easy/Medium tiers and the paper's numbers come from, and refusing stops a load of their data as shipped.

Left out on purpose: validating rows (``data.records``, ``data.validation``), what a prompt without images
looks like (``format``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from pebr_lit.data.bad_records import ON_BAD_RECORD_DEFAULT, OnBadRecord, log_count, report_path, settle
from pebr_lit.data.records import Record
from pebr_lit.data.validation import RecordChecks, validate_files

TextOnly = Literal["keep", "skip", "error"]

#: The DataModules' default, said once (see the module docstring for why).
TEXT_ONLY_DEFAULT: TextOnly = "keep"

#: Rows named in the warning of a skip.
SHOWN = 3


def check_text_only(owner: str, value: str) -> TextOnly:
    """``value`` when it is a ``TextOnly`` choice, else a ``ValueError`` naming ``owner`` (a class name)."""
    choices = get_args(TextOnly)
    if value not in choices:
        raise ValueError(
            f"{owner}.text_only={value!r}: not a choice. "
            f"Use one of {list(choices)} (keep: train text-only rows, skip: drop and count them, error: refuse them)."
        )
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class LoadedRecords:
    """Records of one split, the text-only rows met while loading them, and the bad rows left out."""

    records: list[Record]
    #: Sources ("<file>:row <n>") of the text-only rows: in ``records`` under keep, dropped under skip.
    text_only: tuple[str, ...]
    #: Sources of the rows left out by ``on_bad_record: skip`` (each listed in the report file).
    bad_rows: tuple[str, ...] = ()


def load_split(
    files: Sequence[str],
    image_root: str | None,
    text_only: TextOnly,
    limit: int | None = None,
    split: str = "",
    *,
    checks: RecordChecks | None = None,
    on_bad_record: OnBadRecord = ON_BAD_RECORD_DEFAULT,
    report: Path | None = None,
    extra: Callable[[Record], None] | None = None,
    rank_zero: bool = True,
) -> LoadedRecords:
    """Load record files under ``text_only`` through one validation pass (``data.validation``; every image checked
    unless ``checks`` says otherwise); bad rows raise or are skipped as ``on_bad_record`` says (``data.bad_records``),
    listed in ``report``. ``limit`` counts the records kept, and only rows up to the ``limit``-th kept one are read.
    ``rank_zero``: this process writes the report and shows the progress bar.
    """
    checks = replace(checks or RecordChecks(), image_root=image_root, allow_text_only=text_only != "error")
    kept = (lambda r: bool(r.images)) if text_only == "skip" else None
    validation = validate_files(
        files, checks, limit, extra, progress=rank_zero, desc=f"checking {split or 'records'}", counts=kept
    )
    settle(validation, on_bad_record, report, split, write=rank_zero)
    records = [r for r in validation.records if r.images or text_only == "keep"]
    found = [r.source for r in validation.records if not r.images]
    where = f"{split}: " if split else ""
    if found and text_only == "skip":
        shown = ", ".join(found[:SHOWN]) + (", ..." if len(found) > SHOWN else "")
        rank_zero_warn(f"{where}skipped {len(found)} text-only row(s) (images: []), as text_only: skip says: {shown}")
    elif found:
        rank_zero_info(f"{where}{len(found)} text-only row(s) (images: []) kept as text-only prompts")
    return LoadedRecords(records, tuple(found), tuple(validation.bad_rows))


def load_checked(
    datamodule: Any,
    files: Sequence[str],
    split: str,
    limit: int | None = None,
    extra: Callable[[Record], None] | None = None,
    allow_empty: bool = False,
) -> list[Record]:
    """A DataModule's records of one split, through ``load_split`` with its options (``image_root``, ``text_only``,
    ``record_checks``, ``on_bad_record``, ``bad_records_dir``); counts go to ``text_only_rows`` and ``bad_records``.
    ``allow_empty``: an empty file is the caller's to report (an empty tier)."""
    trainer = getattr(datamodule, "trainer", None)
    report = report_path(datamodule, datamodule.bad_records_dir, split)  # every rank: the log dir is a collective
    loaded = load_split(
        files,
        datamodule.image_root,
        datamodule.text_only,
        limit,
        split,
        checks=replace(datamodule.record_checks, allow_empty_files=allow_empty),
        on_bad_record=datamodule.on_bad_record,
        report=report,
        extra=extra,
        rank_zero=getattr(trainer, "is_global_zero", True),
    )
    datamodule.text_only_rows[split] = len(loaded.text_only)
    log_count(datamodule, split, len(loaded.bad_rows))
    return loaded.records
