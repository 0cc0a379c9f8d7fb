"""Sources: read the raw rows of a data file or folder (JSONL, JSON, Parquet, HF datasets, folders of files).

``read_rows`` yields ``("<file>:row <n>", row)`` pairs, lazily, in file order; an unreadable source
raises ``RecordError``, the error type the whole data layer shares (defined here, the lowest layer, so
``records`` can import it without a cycle; ``pebr_lit.data.records`` re-exports it).

Left out on purpose: checking or normalising a row (``records.record_from_dict``), duplicate qids,
image paths; a row may be any JSON value here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


class RecordError(ValueError):
    """A bad data source or row; the message names where, which field, what is wrong and what to do."""

    def __init__(self, source: str, problem: str, fix: str, field: str | None = None):
        self.source, self.problem, self.fix, self.field = source, problem, fix, field
        where = f"{source}: field '{field}'" if field else source
        super().__init__(f"{where}: {problem}. {fix.rstrip('.')}.")

    def __reduce__(self):  # keep the exception picklable (DataLoader workers, multiprocessing)
        return (RecordError, (self.source, self.problem, self.fix, self.field))


def _rows_jsonl(path: Path, keep_going: bool = False) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8-sig") as f:  # -sig: tolerate a byte-order mark from Windows editors
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                error = RecordError(
                    f"{path}:row {n}", f"invalid JSON ({e.msg} at column {e.colno})", "Fix or delete the line"
                )
            except (ValueError, RecursionError) as e:  # integers over 4300 digits, absurd nesting
                error = RecordError(f"{path}:row {n}", f"unreadable JSON ({e})", "Fix or delete the line")
            else:
                yield f"{path}:row {n}", row
                continue
            if not keep_going:
                raise error
            yield f"{path}:row {n}", error


def _rows_json(path: Path) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8-sig") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            hint = "Rename the file to .jsonl" if e.msg == "Extra data" else "Fix the JSON"
            raise RecordError(str(path), f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})", hint) from None
        except (ValueError, RecursionError) as e:
            raise RecordError(str(path), f"unreadable JSON ({e})", "Fix the JSON") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise RecordError(
            str(path), f"top level is a {type(data).__name__}", 'Write a list of objects or {"data": [...]}'
        )
    for n, row in enumerate(data, start=1):
        yield f"{path}:row {n}", row


def _rows_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=256)
        for batch in batches:
            for row in batch.to_pylist():
                n += 1
                yield f"{path}:row {n}", row
    except (pa.ArrowException, OSError) as e:
        raise RecordError(
            f"{path}:row {n + 1}", f"cannot read Parquet ({e})", "Check that the file is complete Parquet"
        ) from None


def _rows_hf(path: Path, split: str | None, limit: int | None) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types (FileNotFoundError, KeyError, ArrowInvalid, ...)
        raise RecordError(
            str(path),
            f"cannot load with datasets.load_from_disk ({type(e).__name__}: {e})",
            "Re-save it with Dataset.save_to_disk",
        ) from None
    name = str(path)
    if isinstance(ds, datasets.DatasetDict):
        split = split or "train"
        if split not in ds:
            raise RecordError(name, f"no split '{split}' (available: {', '.join(ds)})", "Pass split= one of those")
        ds, name = ds[split], f"{path}[{split}]"
    elif split is not None and ds.split is not None and str(ds.split) != split:
        raise RecordError(
            name, f"holds split '{ds.split}', not '{split}'", "Pass that split or point to the right folder"
        )
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    # Arrow format hands out Image columns as raw {"bytes", "path"} dicts instead of decoding them all.
    ds = ds.with_format("arrow")
    for start in range(0, len(ds), 256):
        for i, row in enumerate(ds[start : start + 256].to_pylist(), start=start + 1):
            yield f"{name}:row {i}", row


def _data_files(path: Path, split: str | None) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES)
    if split is not None:
        # "train.jsonl", "train-00000-of-00002.parquet", "train_part1.json" belong to split "train".
        files = [p for p in files if p.stem == split or p.stem.startswith((f"{split}-", f"{split}_", f"{split}."))]
    if not files:
        wanted = f"files for split '{split}'" if split else "data files"
        raise RecordError(
            str(path),
            f"no {wanted} ({'/'.join(DATA_SUFFIXES)}) and no datasets metadata",
            "Point to a data file or a folder made by save_to_disk",
        )
    return files


def read_rows(path: Path, split: str | None, limit: int | None, keep_going: bool = False) -> Iterator[tuple[str, Any]]:
    """Yield ``(source, row)`` for each row of a file or folder; ``limit`` trims a datasets folder (files stream).

    ``keep_going``: a JSONL line that is not JSON is yielded as ``(source, RecordError)`` and reading goes on
    (the validation pass reports every such line); otherwise it raises.
    """
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            yield from _rows_hf(path, split, limit)
            return
        for file in _data_files(path, split):
            yield from read_rows(file, None, limit, keep_going)
        return
    readers = {".jsonl": _rows_jsonl, ".json": _rows_json, ".parquet": _rows_parquet}
    if path.suffix not in readers:
        raise RecordError(
            str(path),
            f"unsupported file type '{path.suffix}'",
            "Use .json, .jsonl, .parquet or a datasets folder made by save_to_disk",
        )
    try:
        yield from _rows_jsonl(path, keep_going) if path.suffix == ".jsonl" else readers[path.suffix](path)
    except UnicodeDecodeError as e:
        raise RecordError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})", "Re-save it as UTF-8") from None
