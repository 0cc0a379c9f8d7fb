"""Sampling results on disk: the per-question row, rank shard files, torn-tail-safe reading, merging.

Difficulty sampling writes one JSON line per question,
``{"qid", "n", "n_correct", "pass_rate", "correct": [0/1 per response], "responses"?, "format"?}``.
While a run is in progress each process appends to its own shard ``<stem>.rank<k><suffix>`` beside
the results file (``data.shards``); ``merge_samples`` folds every shard into the results file and
deletes the shards.

The rule that makes resuming exact: **a row counts once its terminating newline is on disk.** A last
line without one (a process killed mid-write) is a torn tail: readers ignore it and ``open_shard``
cuts it off before appending, so the question is sampled again, never parsed half or kept twice.
A complete line that is not a valid row is corruption and an error, never skipped.

Left out on purpose: generating and grading (``modules.sft``), Lightning hooks
(``callbacks.sampling_writer``), and what pass rates mean (``data.tiers``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from pebr_lit.data.shards import (
    append_rows,
    complete_lines,
    locked,
    open_shard,
    shard_path,
    shard_paths,
)
from pebr_lit.data.sources import RecordError


def make_row(
    qid: str, correct: Sequence[float], responses: Sequence[str] | None = None, format_ok: Sequence[float] | None = None
) -> dict[str, Any]:
    """One question's row from its per-response correctness (1.0/0.0); texts and format flags optional."""
    flags = [int(c) for c in correct]
    if not flags:
        raise ValueError(f"qid {qid!r}: no responses to count.")
    row: dict[str, Any] = {
        "qid": qid,
        "n": len(flags),
        "n_correct": sum(flags),
        "pass_rate": sum(flags) / len(flags),
        "correct": flags,
    }
    if responses is not None:
        row["responses"] = list(responses)
    if format_ok is not None:
        row["format"] = [int(f) for f in format_ok]
    return row


def check_row(row: Any, where: str) -> dict[str, Any]:
    """Validate the fields tiers rely on; raise ``RecordError`` naming ``where`` ("<file>:row <k>")."""
    fix = "Fix or delete the line, then rerun the sampling (it resumes)"
    if not isinstance(row, dict):
        raise RecordError(where, f"expected an object, got {type(row).__name__}", fix)
    if not isinstance(row.get("qid"), str) or not row["qid"]:
        raise RecordError(where, f"expected a non-empty string, got {row.get('qid')!r}", fix, "qid")
    n, k = row.get("n"), row.get("n_correct")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RecordError(where, f"expected an integer >= 1, got {n!r}", fix, "n")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= n:
        raise RecordError(where, f"expected an integer in [0, n={n}], got {k!r}", fix, "n_correct")
    return row


# ------------------------------------------------------------------------------------------ files
def read_sample_file(path: str | Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """``([(where, row), ...], torn_bytes)`` of one file; a missing file is empty; the torn tail is not read."""
    rows = []
    lines, torn = complete_lines(path)
    for n, line in lines:
        where = f"{path}:row {n}"
        try:
            row = json.loads(line)
        except (UnicodeDecodeError, ValueError) as e:
            raise RecordError(
                where,
                f"complete line that is not JSON ({e})",
                "The file was changed by hand or by another program: fix or delete the line",
            ) from None
        rows.append((where, check_row(row, where)))
    return rows, torn


def load_samples(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every row of the results file and all its shards, by qid, first-seen order.

    The same qid twice with an identical row (a merge interrupted before it deleted the shards) counts
    once; with different rows it is a ``RecordError`` naming both places, since either could be right.
    """
    rows: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, str] = {}
    for file in [Path(path), *shard_paths(path)]:
        for where, row in read_sample_file(file)[0]:
            qid = row["qid"]
            if qid not in rows:
                rows[qid], first_seen[qid] = row, where
            elif rows[qid] != row:
                raise RecordError(
                    where,
                    f"qid {qid!r} was already sampled with a different result at {first_seen[qid]}",
                    "Two runs wrote the same output; delete one of the two lines and rerun",
                    "qid",
                )
    return rows


def done_qids(path: str | Path) -> set[str]:
    """Qids with a complete row in the results file or any shard: what a rerun skips."""
    return set(load_samples(path))


def merge_samples(path: str | Path, order: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Fold every shard into ``path`` (atomically), delete the shards, return the rows by qid.

    order: qids in the order rows should be written (usually the input order); others follow.
    Without shards the results file is left as it is.
    """
    path = Path(path)
    shards = shard_paths(path)
    if not shards:
        return load_samples(path)
    locks: list[BinaryIO] = []
    try:
        for shard in shards:  # a live writer's shard must not vanish under it
            locks.append(locked(shard, "rb"))
        return _merge_locked(path, shards, order)
    finally:
        for lock in locks:
            lock.close()


def _merge_locked(path: Path, shards: list[Path], order: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    rows = load_samples(path)
    if order is not None:
        rank = {qid: i for i, qid in enumerate(order)}
        rows = dict(sorted(rows.items(), key=lambda item: rank.get(item[0], len(rank))))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            append_rows(f, rows.values())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Killed here, the shards repeat rows that are now in ``path``: identical, so they count once.
    for shard in shards:
        shard.unlink()
    return rows


__all__ = [
    "make_row",
    "check_row",
    "shard_path",
    "shard_paths",
    "read_sample_file",
    "load_samples",
    "done_qids",
    "open_shard",
    "append_rows",
    "merge_samples",
]
