"""Benchmark adapters' shared parts: the item type, the ``Benchmark`` base class, prompts and breakdowns.

An adapter (one subclass per benchmark, chosen by ``class_path`` in YAML) reads its benchmark's
*released* file layout into ``BenchmarkItem``s (prompt text with the options written in, ground
truth, images, grouping fields), scores one response by the benchmark's published rules
(``score``) and turns the scored rows into the benchmark's official numbers (``aggregate``).
Scoring grades the PeBR final-answer section (``format.response.extract_answer``), which falls back to the
whole response when a model does not write the heading.

Shared here: image references checked at load with errors that name the row, column and file, the
multiple-choice and yes/no rule of each scoring mode, and per-group accuracy breakdowns. Reading the files
themselves is ``benchmarks.tables``, which files are read ``benchmarks.layouts``, prompts and options written
inside question text ``benchmarks.prompts`` (re-exported here).

Left out on purpose: matching answers (``eval.answers``), generation and result files
(``modules.evaluation``, ``eval.results``), the format instruction before each prompt (``format``).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from pebr_lit.data.images import ImageRef, normalise_ref
from pebr_lit.data.records import load_item_images, problem_and_fix
from pebr_lit.data.sources import RecordError
from pebr_lit.eval.answers import extract_choice, match_choice, match_yes_no
from pebr_lit.eval.benchmarks.layouts import own_files
from pebr_lit.eval.benchmarks.prompts import LETTERS, inline_options, letter_of, mcq_prompt, with_choices
from pebr_lit.eval.benchmarks.tables import tsv_images
from pebr_lit.eval.numbers import match_free_form
from pebr_lit.eval.vlmevalkit_rules import can_infer, choice_dict, yorn_extraction
from pebr_lit.format.response import extract_answer

CHOICE, FREE_FORM, YES_NO = "choice", "free_form", "yes_no"


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark question, ready to prompt and to score."""

    qid: str
    """Id unique within the benchmark, built from the release's id columns."""
    problem: str
    """Prompt text placed after the format instruction: the benchmark's conventional prompt, options included."""
    answer: str
    """Ground truth: an option letter for multiple choice, "yes"/"no", or the free-form answer."""
    images: tuple[ImageRef, ...] = field(hash=False)
    """Image references in prompt order; paths are checked to exist at load."""
    kind: str = FREE_FORM
    """How ``Benchmark.score`` grades it by default: ``choice``, ``free_form`` or ``yes_no``."""
    options: tuple[str, ...] = ()
    """Option texts, ``options[0]`` being option A; empty when the options exist only in the image."""
    meta: dict[str, Any] = field(default_factory=dict, hash=False)
    """Grouping fields for the breakdowns and scoring extras (e.g. ``precision``); JSON values only."""
    source: str = field(default="", compare=False)
    """Where the row came from ("<file>:row <n>"), for error messages."""
    index: int = 0
    """Position in the benchmark's file order; result rows are written in this order."""

    def load_images(self) -> list[Image.Image]:
        """Decode every image to RGB; a missing or broken one raises ``RecordError`` naming ``images[i]``."""
        return load_item_images(self)


class Benchmark:
    """Base of the benchmark adapters: read the released file, score a response, aggregate scored rows.

    Args:
        path: The benchmark's released file or folder (the layout is in each adapter's docstring).
        limit: Evaluate only the first N questions, for quick checks; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name used in metric keys and result files; null = the adapter's default name.
        split: In a folder, read the files named after this split; null = the adapter's default split.
        scoring: Whose rule grades a response: ``vlmevalkit`` (VLMEvalKit's, which the paper's numbers came from)
            or ``official`` (the benchmark's own released scoring code); see docs/evaluation.md.
    """

    default_name: ClassVar[str] = "benchmark"
    #: The release's split read from a folder (e.g. "testmini"); None = every data file in it.
    default_split: ClassVar[str | None] = None
    #: The released layout in a few words; every "missing column" error quotes it.
    layout: ClassVar[str] = ""
    #: Meta fields broken down by value in ``aggregate`` (a list value counts under each entry).
    group_by: ClassVar[tuple[str, ...]] = ()
    #: Metrics shown for this benchmark in the summary table.
    headline: ClassVar[tuple[str, ...]] = ("accuracy",)
    #: The scoring modes the adapter implements (``scoring``), the default first.
    scoring_modes: ClassVar[tuple[str, ...]] = ("vlmevalkit", "official")
    #: Why a mode is not offered, quoted when it is asked for (e.g. the official scorer is a GPT judge).
    scoring_refusals: ClassVar[dict[str, str]] = {}
    #: The multiple-choice rule of each scoring mode: ``can_infer`` (VLMEvalKit's exact matching, option text
    #: only within its length limit) or ``lenient`` (``eval.answers.match_choice``); modes not named: lenient.
    choice_rules: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        path: str,
        limit: int | None = None,
        image_root: str | None = None,
        name: str | None = None,
        split: str | None = None,
        scoring: str | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(
                f"{type(self).__name__}.limit={limit!r}: must be >= 1. Give the questions to ask, or null for all."
            )
        if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(
                f"{type(self).__name__}.name={name!r}: it names metrics and files. "
                "Use only letters, digits, '_' or '-'."
            )
        self.path = path
        self.limit = limit
        self.image_root = image_root
        self.name = name or self.default_name
        self.split = split or self.default_split
        if scoring is not None and scoring not in self.scoring_modes:
            why = self.scoring_refusals.get(scoring, "unknown scoring mode")
            raise ValueError(
                f"{type(self).__name__}.scoring={scoring!r}: {why}. "
                f"Use one of {list(self.scoring_modes)} (null = {self.scoring_modes[0]})."
            )
        self.scoring = scoring or self.scoring_modes[0]
        self.files_read: list[Path] = []  # set by files(): what the last load read, and what it left beside them
        self.files_left: list[str] = []

    # ------------------------------------------------------------------------------------- loading
    def items(self) -> list[BenchmarkItem]:
        """The questions of ``path`` in file order (first ``limit``); qids must be unique."""
        path = Path(self.path).expanduser()
        if not path.exists():
            raise RecordError(str(path), "no such file or directory", f"{type(self).__name__} expects {self.layout}")
        items = self.load(path)
        if not items:
            raise RecordError(str(path), "holds no questions", f"{type(self).__name__} expects {self.layout}")
        seen: dict[str, str] = {}
        for item in items:
            if item.qid in seen:
                raise RecordError(
                    item.source,
                    f"duplicate question id {item.qid!r} (first at {seen[item.qid]})",
                    "Point to one split of the benchmark, not several copies",
                    "qid",
                )
            seen[item.qid] = item.source
        items = items[: self.limit] if self.limit is not None else items
        return [replace(item, index=i) for i, item in enumerate(items)]

    def load(self, path: Path) -> list[BenchmarkItem]:
        """Read the released file or folder at ``path`` (the adapter's job)."""
        raise NotImplementedError

    def files(self, path: Path) -> list[Path]:
        """The data files to read at ``path`` (``benchmarks.layouts.own_files``: in a folder only this benchmark's
        released files, which are logged; another benchmark's file is refused); kept as ``files_read``, and the
        names of the data files left unread beside them as ``files_left``."""
        self.files_read, self.files_left = own_files(
            path, self.default_name, self.split, type(self).__name__, self.layout
        )
        return self.files_read

    def options_needed(self, options: tuple[str, ...], source: str, where: str) -> tuple[str, ...]:
        """``options`` when there are at least two, else a ``RecordError`` (a file of another benchmark's layout)."""
        if len(options) < 2:
            raise RecordError(
                source, f"no options in {where}", f"{type(self).__name__} expects {self.layout}", where.split()[0]
            )
        return options

    def root(self, path: Path) -> Path:
        """Folder that relative image paths start from."""
        if self.image_root is not None:
            return Path(self.image_root).expanduser()
        return path if path.is_dir() else path.parent

    def need(self, row: dict[str, Any], name: str, source: str) -> Any:
        """``row[name]``, or a ``RecordError`` naming the missing column and the expected layout."""
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            what = "missing column" if name not in row else "empty value in column"
            raise RecordError(
                source,
                f"{what} '{name}' (columns present: {', '.join(sorted(map(str, row)))})",
                f"{type(self).__name__} expects {self.layout}",
                name,
            )
        return value

    def image(self, value: Any, source: str, column: str, root: Path) -> ImageRef:
        """One image reference from a cell: bytes, ``{"bytes", "path"}``, a path, or a data URL; paths must exist."""
        if value is None or (isinstance(value, dict) and value.get("bytes") is None and not value.get("path")):
            raise RecordError(source, "no image", f"{type(self).__name__} expects {self.layout}", column)
        try:
            ref = normalise_ref(value, root)
        except ValueError as e:
            raise RecordError(source, *problem_and_fix(e, "Replace the image"), column) from None
        if isinstance(ref, str) and not os.path.isfile(ref):
            raise RecordError(
                source,
                f"image file not found: {ref}",
                "Unpack the benchmark's images where its file expects them, or set image_root",
                column,
            )
        return ref

    def row_images(
        self,
        row: dict[str, Any],
        source: str,
        root: Path,
        tsv: bool,
        columns: tuple[str, ...] = ("decoded_image", "image"),
    ) -> tuple[ImageRef, ...]:
        """A row's images: a TSV's base64 ``image`` cell, else the first filled of ``columns`` (the last is
        required)."""
        if tsv:
            return tuple(tsv_images(self.need(row, "image", source), source))
        column = next((c for c in columns[:-1] if row.get(c)), columns[-1])
        return (self.image(self.need(row, column, source), source, column, root),)

    # ------------------------------------------------------------------------------------- scoring
    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        """``{"prediction": the graded answer text, "correct": bool}`` (plus ``"choice"``, the letter read, for
        multiple choice)."""
        text = extract_answer(response)
        if item.kind == CHOICE and self.choice_rules.get(self.scoring) == "can_infer":
            letter = can_infer(text, choice_dict(item.options))
            return {"prediction": text, "choice": letter, "correct": letter is not None and letter == item.answer}
        if item.kind == CHOICE:
            return {
                "prediction": text,
                "choice": extract_choice(text, item.options),
                "correct": match_choice(text, item.options, item.answer),
            }
        if item.kind == YES_NO and self.scoring == "vlmevalkit":
            said = yorn_extraction(text)
            return {"prediction": text, "yes_no": said, "correct": said is not None and said == item.answer}
        if item.kind == YES_NO:
            return {"prediction": text, "correct": match_yes_no(text, item.answer)}
        return {"prediction": text, "correct": match_free_form(text, item.answer, precision=item.meta.get("precision"))}

    def aggregate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """``{"metrics": {"accuracy", "n"}, "breakdown": {field: {value: {"accuracy", "n"}}}}`` over scored rows.

        A row is ``{"qid", "correct", "meta", ...}`` (``meta`` as on the item).
        """
        return {
            "metrics": {"accuracy": mean(r["correct"] for r in rows), "n": len(rows)},
            "breakdown": {g: accuracy_by(rows, g) for g in self.group_by},
        }


# ------------------------------------------------------------------------------------- aggregation
def mean(values: Iterable[Any]) -> float | None:
    """Mean of booleans/numbers; None for no values (JSON-safe, unlike NaN)."""
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def accuracy_by(rows: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    """``{value: {"accuracy", "n"}}`` over ``row["meta"][name]``; list values count under each entry."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        value = row["meta"].get(name)
        for v in value if isinstance(value, list) else [value]:
            if v is not None and v != "":
                groups[str(v)].append(bool(row["correct"]))
    return {k: {"accuracy": mean(groups[k]), "n": len(groups[k])} for k in sorted(groups)}


def all_correct_by(rows: list[dict[str, Any]], key: Any) -> dict[Any, bool]:
    """Whether every row of each group is correct; ``key(row)`` names the group (None leaves a row out)."""
    groups: dict[Any, bool] = {}
    for row in rows:
        k = key(row)
        if k is not None:
            groups[k] = groups.get(k, True) and bool(row["correct"])
    return groups


__all__ = [
    "CHOICE",
    "FREE_FORM",
    "LETTERS",
    "YES_NO",
    "Benchmark",
    "BenchmarkItem",
    "accuracy_by",
    "all_correct_by",
    "inline_options",
    "letter_of",
    "mcq_prompt",
    "mean",
    "with_choices",
]
