"""Released benchmark tables: parquet / JSON / JSONL / ``datasets`` folders and VLMEvalKit TSVs, row by row.

Rows come as ``(source, row)`` with ``source`` = "<file>:row <n>" for error messages. A JSON file whose
top level is an object of objects keyed by question id (MathVista's ``testmini.json``, LogicVista's and
DynaMath's ``dataset.json`` in their repositories) gives one row per key, with the key as ``id`` unless
the row has its own, and ``source`` = "<file>:<key>". VLMEvalKit TSVs
hold every cell as text and each image base64-encoded; an image used by several rows is stored once,
and the other rows' ``image`` cell holds that row's ``index`` (64 characters or fewer), which is
resolved here. List and struct cells may arrive as Python-literal strings and are parsed back.

Left out on purpose: what the columns mean (each adapter) and decoding images (``data.records``).
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError, read_rows


def read_table(path: Path, split: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(source, row)`` pairs of a TSV (VLMEvalKit), parquet, JSON, JSONL file or a folder of them."""
    if path.is_file() and path.suffix.lower() == ".tsv":
        yield from _rows_tsv(path)
        return
    if keyed := _keyed_json(path):
        for key, row in keyed.items():
            yield f"{path}:{key}", {"id": key, **row}
        return
    for source, row in read_rows(path, split, None):
        if not isinstance(row, dict):
            raise RecordError(
                source, f"expected an object, got {type(row).__name__}", "Point to the benchmark's data file"
            )
        yield source, row


def _keyed_json(path: Path) -> dict[str, dict[str, Any]] | None:
    """A JSON file's top-level object when every value is an object (rows keyed by id); None otherwise."""
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return None  # read_rows reports the problem with its own message
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    return None


def _rows_tsv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pandas as pd

    try:  # every cell as text, empty cells as "" (VLMEvalKit leaves unused option columns empty)
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (ValueError, OSError) as e:
        raise RecordError(
            str(path), f"cannot read as TSV ({e})", "Check that the file is a complete VLMEvalKit TSV"
        ) from None
    rows = frame.to_dict(orient="records")
    # VLMEvalKit stores a repeated image once: a short "image" cell is the index of the row holding it.
    by_index = (
        {row["index"]: row["image"] for row in rows if len(row.get("image", "")) > 64} if "index" in frame else {}
    )
    for n, row in enumerate(rows, start=1):
        cell = row.get("image", "")
        if by_index and 0 < len(cell.strip()) <= 64:
            if cell.strip() not in by_index:
                raise RecordError(
                    f"{path}:row {n}",
                    f"image cell {cell.strip()!r} names no row's index that holds an image",
                    "Check that the TSV is complete (VLMEvalKit writes a repeated image once)",
                    "image",
                )
            row["image"] = by_index[cell.strip()]
        yield f"{path}:row {n}", row


def tsv_images(value: str, source: str, column: str = "image") -> list[bytes]:
    """A VLMEvalKit ``image`` cell: one base64 image, or a Python-list string of them (multi-image rows)."""
    cells = as_list(value) if value.lstrip().startswith("[") else [value]
    out = []
    for cell in cells:
        try:
            data = base64.b64decode("".join(str(cell).split()), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if not data:
            raise RecordError(
                source, "not base64 image data", "VLMEvalKit TSVs store each image base64-encoded", column
            )
        out.append(data)
    return out


def as_list(value: Any) -> list[Any]:
    """A list cell that may arrive as a list, a tuple, a Python-list string ("['a', 'b']") or null."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return [value]
            return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
    return [value]


def as_dict(value: Any) -> dict[str, Any]:
    """A struct cell that may arrive as a dict, a Python/JSON dict string (VLMEvalKit TSVs) or null; {} otherwise."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def is_tsv(path: Path) -> bool:
    """Whether ``path`` is a VLMEvalKit TSV (read by ``read_table``, images base64 in its ``image`` column)."""
    return path.is_file() and path.suffix.lower() == ".tsv"
