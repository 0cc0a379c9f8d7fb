"""Text-only rows (``images: []``): the DataModules' ``text_only`` option, and loading record files under it.

The authors' RL pool holds questions without images. ``text_only`` says what a DataModule does with them:

- ``keep`` (the default): load them and train or sample them as text-only prompts, as the authors' loader
  does (EasyR1 renders such a row without image parts and trains on it). Batches may then mix rows with
  and without images; the stage-1 CLIP reward of a text-only row is 0 (``modules.perception``).
- ``skip``: drop them, warn once with their count and the first few rows, and keep the count
  (``LoadedRecords.text_only``; a DataModule's ``text_only_rows``).
- ``error``: refuse the first one, naming its file and row and this option.

``keep`` is the default because it is the authors' behaviour: skipping changes the training pool that
Easy/Medium tiers and the paper's numbers come from, and refusing stops a load of their data as shipped.

Left out on purpose: validating rows (``data.records``), what a prompt without images looks like (``format``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from pebr_lit.data.records import Record, load_files

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
    """Records of one split and the text-only rows met while loading them."""

    records: list[Record]
    #: Sources ("<file>:row <n>") of the text-only rows: in ``records`` under keep, dropped under skip.
    text_only: tuple[str, ...]


def load_split(
    files: Sequence[str], image_root: str | None, text_only: TextOnly, limit: int | None = None, split: str = ""
) -> LoadedRecords:
    """Load record files under ``text_only``; ``limit`` counts the records kept, and only rows up to the
    ``limit``-th kept one count as met."""
    kept: list[Record] = []
    found: list[str] = []
    for record in load_files(files, image_root, allow_text_only=text_only != "error"):
        if limit is not None and len(kept) == limit:
            break
        if record.images or text_only == "keep":
            kept.append(record)
        if not record.images:
            found.append(record.source)
    where = f"{split}: " if split else ""
    if found and text_only == "skip":
        shown = ", ".join(found[:SHOWN]) + (", ..." if len(found) > SHOWN else "")
        rank_zero_warn(f"{where}skipped {len(found)} text-only row(s) (images: []), as text_only: skip says: {shown}")
    elif found:
        rank_zero_info(f"{where}{len(found)} text-only row(s) (images: []) kept as text-only prompts")
    return LoadedRecords(kept, tuple(found))
