"""Records: load, validate and write the question rows every stage reads (JSON, JSONL, Parquet, HF datasets).

One row is ``{"qid", "problem", "answer", "images", "key_words"?, "description"?, "response"?, "meta"?}``.
``load_records`` reads any supported source, checks every row and raises ``RecordError`` on the first
bad one ("<file>:row <n>: field '<name>': <problem>. <what to do>"); it never drops a row. Rows count
from 1: in a JSONL file the row is the line number, elsewhere the position of the object.

Accepted on input (and written back in canonical form):
  - aliases ``image`` -> ``images``, ``question`` -> ``problem``, ``id`` -> ``qid``,
    ``keywords`` -> ``key_words`` (a row may not hold both a field and its alias);
  - ``images`` as one reference instead of a list; see ``data.images`` for the reference forms;
  - ``answer`` and ``qid`` as numbers (integral floats lose their ".0", as pandas turns int columns
    with gaps into floats); ``key_words`` as one comma-separated string;
  - any other field, which is kept in ``meta`` under its own name (it must be JSON-serialisable).
Images are decoded lazily (``Record.load_images``); ``data.validation`` checks them up front. An image path
that leaves the image root (``..``, an absolute path elsewhere) is refused unless ``allow_outside_root``. A row
with ``images: []`` (text-only) is refused unless ``allow_text_only``; ``data.text_only`` keeps or skips them.
Text that is not valid Unicode (a lone surrogate from a JSON escape) is refused in every field.

Left out on purpose: reading files (``data.sources``, which also defines ``RecordError``), decoding
details (``data.images``), prompts (``format``), batching, tiers.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from pebr_lit.data.images import (
    ImageRef,
    encode_data_url,
    normalise_ref,
    open_rgb,
    png_bytes,
)
from pebr_lit.data.sources import RecordError, read_rows

#: What to do about a text-only row where it is refused (the DataModules' ``text_only`` option).
TEXT_ONLY_FIX = (
    "Give the row an image, or choose text_only: keep (train it as a text-only prompt) or skip (drop and "
    "count it), in data.init_args.text_only (--text-only for python -m pebr_lit.data.tiers)"
)
ALIASES = {"image": "images", "question": "problem", "id": "qid", "keywords": "key_words"}
NOT_UNICODE_FIX = "Fix the text: a lone surrogate (a JSON escape such as \\ud800 without its pair) is not a character"
FIELDS = ("qid", "problem", "answer", "images", "key_words", "description", "response", "meta")


@dataclass(frozen=True)
class Record:
    """One validated question with its images; built by ``record_from_dict``/``load_records``."""

    qid: str
    """Unique id of the question within a dataset."""
    problem: str
    """The question text shown to the model (without the format instruction)."""
    answer: str
    """Ground-truth final answer."""
    images: tuple[ImageRef, ...] = field(hash=False)
    """Image references in normal form (path string, encoded bytes or PIL image), in prompt order; none: text-only."""
    key_words: tuple[str, ...] = ()
    """Words a good image description mentions (the perception stage's keyword reward)."""
    description: str | None = None
    """Teacher image description, if any."""
    response: str | None = None
    """Full PeBR-format target response for SFT, if any."""
    meta: dict[str, Any] = field(default_factory=dict, hash=False)
    """Free-form JSON-serialisable extras (question kind, unknown input fields, ...)."""
    source: str = field(default="", compare=False)
    """Where the row came from ("<file>:row <n>"), for error messages; not data."""

    def load_images(self) -> list[Image.Image]:
        """Decode all images to RGB; a missing or unreadable one raises ``RecordError`` naming ``images[i]``."""
        return load_item_images(self)


def load_item_images(item: Any) -> list[Image.Image]:
    """Decode ``item.images`` to RGB for any record-like item (with ``qid``, ``source``, ``images``)."""
    return [_load_one(item, i) for i in range(len(item.images))]


def problem_and_fix(error: ValueError, default_fix: str) -> tuple[str, str]:
    """Split a ``data.images`` message "<problem>. <what to do>" (the problem may quote other sentences)."""
    problem, sep, fix = str(error).rpartition(". ")
    return (problem, fix) if sep else (str(error), default_fix)


def _load_one(record: Any, i: int) -> Image.Image:
    where, name = record.source or f"qid {record.qid!r}", f"images[{i}]"
    try:
        return open_rgb(record.images[i])
    except FileNotFoundError as e:
        raise RecordError(
            where, f"image file not found: {e}", "Check the path and the image_root it is relative to", name
        ) from None
    except ValueError as e:
        raise RecordError(where, *problem_and_fix(e, "Replace the image"), name) from None


# ----------------------------------------------------------------------------------------------- rows


def _text(value: Any, source: str, name: str, numbers: bool = False) -> str:
    """A non-empty string; numbers are turned into text when ``numbers`` (never booleans)."""
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordError(source, f"{value} is not a finite number", "Give a string or a finite number", name)
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if not isinstance(value, str):
        kinds = "a string or a number" if numbers else "a string"
        raise RecordError(source, f"expected {kinds}, got {type(value).__name__}", f"Write it as {kinds}", name)
    if not value.strip():
        raise RecordError(source, "is empty", "Give a non-empty value or drop the row on purpose", name)
    return _unicode(value, source, name)


def _unicode(value: str, source: str, name: str) -> str:
    """``value`` when it is valid Unicode; a lone surrogate ("\\ud800" in JSON) reaches no tokenizer."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError(
            source, f"text is not valid Unicode ({e.reason} at character {e.start})", NOT_UNICODE_FIX, name
        ) from None
    return value


def _optional_text(value: Any, source: str, name: str) -> str | None:
    if value is None:
        return value
    if isinstance(value, str):
        return _unicode(value, source, name)
    raise RecordError(source, f"expected a string or null, got {type(value).__name__}", "Write it as a string", name)


def _json_ok(value: Any, source: str, name: str) -> None:
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError(source, f"text is not valid Unicode ({e.reason})", NOT_UNICODE_FIX, name) from None
    except (TypeError, ValueError, RecursionError) as e:
        raise RecordError(
            source, f"not JSON-serialisable ({e})", "Keep only strings, numbers, lists and dicts", name
        ) from None


def record_from_dict(
    row: Any,
    source: str = "<dict>",
    image_root: str | Path | None = None,
    allow_text_only: bool = False,
    allow_outside_root: bool = False,
) -> Record:
    """Validate one raw row and build its ``Record``; relative image paths join ``image_root`` when given.

    ``source`` ("<file>:row <n>") starts every error message. Raises ``RecordError`` on any problem, an
    empty ``images`` list (a text-only row) included unless ``allow_text_only`` (``data.text_only``), and an
    image path outside ``image_root`` (``..`` or an absolute path elsewhere) unless ``allow_outside_root``.
    """
    if not isinstance(row, dict):
        raise RecordError(source, f"expected an object, got {type(row).__name__}", "Write each row as a JSON object")
    row = dict(row)
    for alias, name in ALIASES.items():
        if alias in row:
            if name in row:
                raise RecordError(source, f"both '{name}' and its alias '{alias}' are set", "Keep one of them", name)
            row[name] = row.pop(alias)
    for name in ("qid", "problem", "answer", "images"):
        if name not in row or row[name] is None:
            raise RecordError(source, "missing or null", f"Every row needs {', '.join(FIELDS[:4])}", name)
    qid = _text(row.pop("qid"), source, "qid", numbers=True)
    problem = _text(row.pop("problem"), source, "problem")
    answer = _text(row.pop("answer"), source, "answer", numbers=True)

    raw_images = row.pop("images")
    if not isinstance(raw_images, (list, tuple)):
        raw_images = [raw_images]  # one image given without a list
    if not raw_images and not allow_text_only:
        raise RecordError(source, "empty list (a text-only row)", TEXT_ONLY_FIX, "images")
    root = Path(os.path.abspath(image_root)) if image_root is not None else None
    images = []
    for i, raw in enumerate(raw_images):
        try:
            images.append(normalise_ref(raw, root, confine=not allow_outside_root))
        except ValueError as e:
            raise RecordError(source, *problem_and_fix(e, "Fix the image reference"), f"images[{i}]") from None

    raw_words = row.pop("key_words", None)
    if raw_words is None:
        raw_words = []
    elif isinstance(raw_words, str):
        raw_words = [w for w in (part.strip() for part in raw_words.split(",")) if w]
    elif not isinstance(raw_words, (list, tuple)):
        raise RecordError(
            source,
            f"expected a list of strings, got {type(raw_words).__name__}",
            "Write key_words as a list of strings or one comma-separated string",
            "key_words",
        )
    # An empty keyword would match every description and inflate the keyword reward, so it is an error.
    key_words = tuple(_text(w, source, f"key_words[{i}]", numbers=True).strip() for i, w in enumerate(raw_words))

    description = _optional_text(row.pop("description", None), source, "description")
    response = _optional_text(row.pop("response", None), source, "response")
    meta = row.pop("meta", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise RecordError(
            source, f"expected an object, got {type(meta).__name__}", "Write meta as a JSON object", "meta"
        )
    meta = dict(meta)
    for name, value in row.items():  # unknown fields are kept, not dropped
        if name in meta:
            raise RecordError(source, "extra field also present in meta", "Rename one of them", str(name))
        _json_ok(value, source, str(name))
        meta[str(name)] = value
    _json_ok(meta, source, "meta")
    return Record(qid, problem, answer, tuple(images), key_words, description, response, meta, source)


def record_to_dict(record: Record, relative_to: str | Path | None = None) -> dict[str, Any]:
    """A JSON-ready dict in canonical field order; bytes and PIL images become base64 data URLs.

    Absolute image paths under ``relative_to`` (usually the output file's directory) are written relative
    to it, so a data folder can be moved as a whole.
    """
    root = Path(os.path.abspath(relative_to)) if relative_to is not None else None
    images = []
    for ref in record.images:
        if isinstance(ref, Image.Image):
            ref = png_bytes(ref)
        if isinstance(ref, bytes):
            images.append(encode_data_url(ref))
            continue
        path = Path(ref)
        if root is not None and path.is_absolute() and path.is_relative_to(root):
            ref = path.relative_to(root).as_posix()
        images.append(ref)
    values = (
        record.qid,
        record.problem,
        record.answer,
        images,
        list(record.key_words),
        record.description,
        record.response,
        dict(record.meta),
    )
    return dict(zip(FIELDS, values))


def load_records(
    path: str | Path,
    image_root: str | Path | None = None,
    limit: int | None = None,
    split: str | None = None,
    allow_text_only: bool = False,
    allow_outside_root: bool = False,
) -> list[Record]:
    """Load and validate every row of a data source; raise ``RecordError`` on the first bad one.

    (``data.validation.validate_files`` reports every bad row instead, and checks the image files too.)

    path: a .json (list, or {"data": [...]}), .jsonl or .parquet file; a folder made by ``save_to_disk``
        (Dataset or DatasetDict); or a folder whose .json/.jsonl/.parquet files are read in name order.
    image_root: folder relative image paths start from; default the data file's folder (or the folder given).
    limit: keep only the first ``limit`` rows (the rest are not read).
    split: DatasetDict split (default "train"); in a plain folder, read only files named after it
        ("train.jsonl", "train-00000-of-00002.parquet"); default all files.
    allow_text_only: accept rows with ``images: []`` (``data.text_only`` keeps or skips them).
    allow_outside_root: accept image paths that leave the image root (``..``, absolute paths elsewhere).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise RecordError(str(path), "no such file or directory", "Check the path")
    if limit is not None and limit < 0:
        raise RecordError(str(path), f"limit={limit} is negative", "Pass limit=None or a count >= 0")
    root = Path(image_root) if image_root is not None else (path if path.is_dir() else path.parent)
    records: list[Record] = []
    first_seen: dict[str, str] = {}
    rows = read_rows(path, split, limit)
    try:
        for source, row in rows if limit != 0 else ():
            record = record_from_dict(row, source, root, allow_text_only, allow_outside_root)
            if record.qid in first_seen:
                raise RecordError(
                    source,
                    f"duplicate qid {record.qid!r} (first at {first_seen[record.qid]})",
                    "Give every record a unique qid",
                    "qid",
                )
            first_seen[record.qid] = source
            records.append(record)
            if len(records) == limit:
                break  # before the next row is even parsed
    finally:
        rows.close()  # closes the open file now when stopping early, not at garbage collection
    return records


def write_records(records: Iterable[Record | dict[str, Any]], path: str | Path) -> Path:
    """Validate and write records (or raw dicts) as UTF-8 JSONL, atomically; returns the path written.

    Image bytes and in-memory images are written as base64 data URLs so nothing is lost; absolute paths
    inside the output folder are written relative to it; relative paths in dicts are kept as given.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines, first_seen = [], {}
    for n, item in enumerate(records, start=1):
        source = f"{path} (input):row {n}"
        record = item if isinstance(item, Record) else record_from_dict(item, source)
        if record.qid in first_seen:
            raise RecordError(
                source,
                f"duplicate qid {record.qid!r} (first at row {first_seen[record.qid]})",
                "Give every record a unique qid",
                "qid",
            )
        first_seen[record.qid] = n
        try:
            line = json.dumps(record_to_dict(record, path.parent), ensure_ascii=False, allow_nan=False) + "\n"
            lines.append(line.encode("utf-8"))
        except UnicodeEncodeError as e:  # lone surrogates, e.g. from a "\ud800" escape in the input JSON
            raise RecordError(source, f"text is not valid Unicode ({e.reason})", "Fix the text") from None
        except (TypeError, ValueError) as e:  # a Record built by hand, bypassing record_from_dict
            raise RecordError(source, f"not JSON-serialisable ({e})", "Keep meta to JSON values", "meta") from None
    # Write beside the target and rename, so readers never see a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
