"""Append-only JSON-lines files, one shard per process: naming, torn-tail-safe reading, locked appending.

Each process appends to its own shard ``<stem>.rank<k><suffix>`` beside a base file, so processes
never write the same file. **A line counts once its terminating newline is on disk**: a last line
without one (a process killed mid-write) is a torn tail, which ``complete_lines`` does not return and
``open_shard`` cuts off before appending, so what it held is made again, never read half or kept
twice. Used by difficulty sampling (``data.samples``), evaluation answers (``eval.answer_log``) and
the judge's reply cache (``eval.judge``).

Left out on purpose: what a line means (each caller parses and validates its own rows).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per shard is then the user's job
    fcntl = None  # type: ignore[assignment]


def shard_path(path: str | Path, rank: int) -> Path:
    """The file process ``rank`` appends to: ``<stem>.rank<k><suffix>`` beside ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def shard_paths(path: str | Path) -> list[Path]:
    """Existing shards of ``path``, by rank (a shard of a run with more processes counts too)."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(path.stem)}\.rank(\d+){re.escape(path.suffix)}")
    if not path.parent.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.parent.iterdir() if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def complete_lines(path: str | Path) -> tuple[list[tuple[int, bytes]], int]:
    """``([(line number, line), ...], torn_bytes)`` of a file's non-blank complete lines; a missing file is empty."""
    lines: list[tuple[int, bytes]] = []
    torn = 0
    path = Path(path)
    if not path.is_file():
        return lines, torn
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                torn = len(line)  # only the last line can lack its newline
                break
            if line.strip():
                lines.append((n, line))
    return lines, torn


def open_shard(path: str | Path) -> tuple[BinaryIO, int]:
    """Open a shard for appending: lock it (one writer per shard), cut a torn tail; ``(handle, bytes cut)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = locked(path, "ab")
    keep = _complete_length(path)
    cut = os.fstat(handle.fileno()).st_size - keep
    if cut:
        os.truncate(handle.fileno(), keep)  # O_APPEND: the next write lands at the new end
        os.fsync(handle.fileno())
    return handle, cut


def append_rows(handle: BinaryIO, rows: Iterable[dict[str, Any]], allow_nan: bool = False) -> None:
    """Append rows as JSON lines in one write, then flush and fsync: they are durable on return.

    ``allow_nan``: write NaN/inf as JSON's common extension instead of refusing them."""
    data = b"".join(json.dumps(row, ensure_ascii=False, allow_nan=allow_nan).encode("utf-8") + b"\n" for row in rows)
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())


def locked(path: Path, mode: str) -> BinaryIO:
    """``open(path, mode)`` holding an exclusive lock, released on close (also by kill -9)."""
    handle = open(path, mode)
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RuntimeError(
                f"{path}: another process is writing this shard. Wait for it to finish, "
                "or give this run another output file or folder."
            ) from None
    return handle


def _complete_length(path: Path, chunk: int = 1 << 16) -> int:
    """Bytes up to and including the last newline (0 when there is none)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            block = f.read(end - start)
            i = block.rfind(b"\n")
            if i >= 0:
                return start + i + 1
            end = start
    return 0
