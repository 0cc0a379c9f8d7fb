"""Validation pass: read record files once, check every row and image, and collect every problem found.

``validate_files`` goes through all rows (it does not stop at the first bad one) and returns the good
records with a ``Problem`` per finding: a row that does not validate (``records.record_from_dict``: fields,
types, non-Unicode text, an image path outside the image root), a line that is not JSON, a duplicate qid
(within or across files), an image that is missing, does not decode or has a refused size
(``data.image_checks``), a caller's own check (``extra``: prompt markers, an SFT target), and per file: a
missing or unreadable file (``fatal``) or one without rows. ``write_report`` lists every problem as JSON
lines and ``problems_message`` gives the first ``SHOWN`` of them in one message. A progress bar appears
when a pass takes more than ``PROGRESS_DELAY_S``.

Left out on purpose: what a DataModule does with the problems (``data.bad_records``), the command line
(``data.validate``), text-only rows' keep/skip choice beyond refusing them (``data.text_only``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pebr_lit.data.image_checks import MIN_SIDE, image_problem
from pebr_lit.data.records import Record, record_from_dict
from pebr_lit.data.sources import RecordError, read_rows

#: Problems quoted in one message; the report file holds all of them.
SHOWN = 20
#: Seconds before the progress bar shows (a pass over a few hundred small records never shows it).
PROGRESS_DELAY_S = 3.0


@dataclass(frozen=True)
class RecordChecks:
    """What the pass checks beyond the record schema (which is always checked)."""

    image_root: str | None = None
    """Folder relative image paths start from, and that image paths must stay in; null = each data file's folder."""
    allow_text_only: bool = True
    """Accept rows with ``images: []``; false refuses each one (``text_only: error``)."""
    allow_outside_root: bool = False
    """Accept image paths outside the image root (``..`` or absolute paths elsewhere)."""
    check_images: bool = True
    """Open every image: it exists, its header (and a small image's pixels) decode, its size is allowed."""
    min_side: int = MIN_SIDE
    """Shortest image side allowed, in pixels (the authors: 28; 0 = no floor)."""
    min_pixels: int | None = None
    """Smallest image area allowed, in pixels; null = no bound."""
    max_pixels: int | None = None
    """Largest image area allowed, in pixels; null = no bound."""
    allow_empty_files: bool = False
    """Accept a file without rows (a caller with its own message for it: an empty tier)."""


def checks_for(
    owner: str,
    allow_outside_root: bool = False,
    check_images: bool = True,
    min_image_side: int = MIN_SIDE,
    min_image_pixels: int | None = None,
    max_image_pixels: int | None = None,
) -> RecordChecks:
    """A DataModule's ``RecordChecks`` from its arguments, checked; ``owner`` (a class name) starts each error."""
    if min_image_side < 0:
        raise ValueError(f"{owner}.min_image_side={min_image_side!r}: must be >= 0 pixels. Use e.g. 28 (the authors').")
    for name, value in (("min_image_pixels", min_image_pixels), ("max_image_pixels", max_image_pixels)):
        if value is not None and value < 1:
            raise ValueError(f"{owner}.{name}={value!r}: must be >= 1 pixels. Use a pixel count, or null for no bound.")
    if min_image_pixels is not None and max_image_pixels is not None and min_image_pixels > max_image_pixels:
        raise ValueError(
            f"{owner}.min_image_pixels={min_image_pixels}, max_image_pixels={max_image_pixels}: the lower bound is "
            "over the upper one. Set min_image_pixels <= max_image_pixels, or null for no bound."
        )
    return RecordChecks(
        allow_outside_root=allow_outside_root,
        check_images=check_images,
        min_side=min_image_side,
        min_pixels=min_image_pixels,
        max_pixels=max_image_pixels,
    )


@dataclass(frozen=True)
class Problem:
    """One finding: where ("<file>:row <n>", or the file), which field, what is wrong and what to do."""

    source: str
    field: str | None
    problem: str
    fix: str
    fatal: bool = False
    """A file that cannot be read at all: no row of it can be skipped instead."""

    @classmethod
    def of(cls, error: RecordError, fatal: bool = False) -> Problem:
        return cls(error.source, error.field, error.problem, error.fix, fatal)

    @property
    def is_row(self) -> bool:
        """Whether it concerns one row (which ``on_bad_record: skip`` can leave out)."""
        return ":row " in self.source and not self.fatal

    def where(self) -> str:
        """ "<file>:row <n>: field '<f>'" (or the part of it that applies)."""
        return f"{self.source}: field '{self.field}'" if self.field else self.source

    def line(self) -> str:
        """The problem as ``RecordError`` words it: "<where>: field '<f>': <problem>. <fix>."."""
        return str(RecordError(self.source, self.problem, self.fix, self.field))

    def as_row(self) -> dict[str, Any]:
        file, sep, row = self.source.rpartition(":row ")
        where = {"file": file, "row": int(row)} if sep and row.isdigit() else {"file": self.source, "row": None}
        return {**where, **asdict(self)}


@dataclass
class Validation:
    """The result of a pass: good records in file order, every problem, and what was read."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    """Rows read (good and bad)."""
    files: list[str] = field(default_factory=list)
    counted: int = 0
    """Good records that count towards a pass's ``limit``."""

    @property
    def bad_rows(self) -> list[str]:
        """Sources of the rows with at least one problem, in file order, each once."""
        return list(dict.fromkeys(p.source for p in self.problems if p.is_row))

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def validate_files(
    files: Sequence[str | Path],
    checks: RecordChecks = RecordChecks(),
    limit: int | None = None,
    extra: Callable[[Record], None] | None = None,
    progress: bool = False,
    desc: str = "validating records",
    counts: Callable[[Record], bool] | None = None,
) -> Validation:
    """Check every row of ``files`` (in order); ``limit`` stops after that many good records (those for which
    ``counts`` is true, when given: a caller that drops some records counts only those it keeps).

    ``extra(record)`` may raise ``RecordError`` for a record that passed the other checks; it is collected too.
    """
    from tqdm.auto import tqdm

    out = Validation(files=[str(f) for f in files])
    seen: dict[str, str] = {}
    bar = tqdm(desc=desc, unit=" rows", delay=PROGRESS_DELAY_S, disable=not progress, leave=False)
    try:
        for f in files:
            if limit is not None and out.counted >= limit:
                break
            _validate_file(Path(f).expanduser(), checks, limit, extra, counts, out, seen, bar)
    finally:
        bar.close()
    return out


def _validate_file(
    path: Path,
    checks: RecordChecks,
    limit: int | None,
    extra: Callable[[Record], None] | None,
    counts: Callable[[Record], bool] | None,
    out: Validation,
    seen: dict[str, str],
    bar: Any,
) -> None:
    if not path.exists():
        out.problems.append(Problem(str(path), None, "no such file or directory", "Check the path", fatal=True))
        return
    root = Path(checks.image_root) if checks.image_root is not None else (path if path.is_dir() else path.parent)
    rows_before = out.rows
    rows = read_rows(path, None, None, keep_going=True)
    try:
        for source, row in rows:
            if limit is not None and out.counted >= limit:
                return  # before the next row is even checked
            out.rows += 1
            bar.update(1)
            found = _check_row(source, row, root, checks, extra, seen)
            if isinstance(found, Record):
                out.records.append(found)
                out.counted += counts is None or bool(counts(found))
            else:
                out.problems += found
    except RecordError as e:  # a file that cannot be read (further): nothing after this point is known
        out.problems.append(Problem.of(e, fatal=True))
        return
    finally:
        rows.close()
    if out.rows == rows_before and limit != 0 and not checks.allow_empty_files:
        out.problems.append(
            Problem(str(path), None, "holds no rows", "Add records to it or remove it from the list of files")
        )


def _check_row(
    source: str,
    row: Any,
    root: Path,
    checks: RecordChecks,
    extra: Callable[[Record], None] | None,
    seen: dict[str, str],
) -> Record | list[Problem]:
    if isinstance(row, RecordError):  # a line that is not JSON (read_rows keep_going)
        return [Problem.of(row)]
    try:
        record = record_from_dict(row, source, root, checks.allow_text_only, checks.allow_outside_root)
    except RecordError as e:
        return [Problem.of(e)]
    except Exception as e:  # noqa: BLE001 - a row must never end the pass with an unnamed error
        return [Problem(source, None, f"unexpected error ({type(e).__name__}: {e})", "Fix or drop the row")]
    problems = []
    if record.qid in seen:
        problems.append(
            Problem(
                source,
                "qid",
                f"duplicate qid {record.qid!r} (first at {seen[record.qid]})",
                "Give every record a unique qid",
            )
        )
    else:
        seen[record.qid] = source
    if checks.check_images:
        for i, ref in enumerate(record.images):
            found = image_problem(ref, checks.min_side, checks.min_pixels, checks.max_pixels)
            if found is not None:
                problems.append(Problem(source, f"images[{i}]", *found))
    if extra is not None and not problems:
        try:
            extra(record)
        except RecordError as e:
            problems.append(Problem.of(e))
    return problems or record


def problems_message(validation: Validation, report: Path | None, fix: str, shown: int = SHOWN) -> str:
    """One message: the counts, the first ``shown`` problems one per line, where all of them are, what to do."""
    problems = validation.problems
    bad = len(validation.bad_rows)
    files = ", ".join(validation.files) or "no files"
    head = f"{len(problems)} problem(s) in {files}: {bad} bad row(s) of {validation.rows} read"
    lines = [f"  {p.where()}: {p.problem}" for p in problems[:shown]]
    fixes = list(dict.fromkeys(p.fix.rstrip(".") for p in problems[:shown]))  # each said once, in order met
    if len(problems) > shown:
        lines.append(f"  ... and {len(problems) - shown} more")
    if report is not None:
        where = f"All {len(problems)} are listed in {report}."
    else:
        where = "Set bad_records_dir (--report) to list them all in a file." if len(problems) > shown else ""
    return "\n".join([head, *lines, *(f"  - {f}." for f in fixes), f"{where} {fix}.".strip()])


def write_report(validation: Validation, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write every problem as one JSON line (``file``, ``row``, ``field``, ``problem``, ``fix``, ...), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for p in validation.problems:
                # ensure_ascii escapes a lone surrogate quoted in a problem, which UTF-8 cannot hold.
                f.write(json.dumps({**p.as_row(), **(extra or {})}, ensure_ascii=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
