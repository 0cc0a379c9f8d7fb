"""Resumable benchmark evaluation: scored answers appended to disk as they are made, read back on a rerun.

A long evaluation (a 7B policy, thousands of questions, up to 2048 new tokens each) should not be
lost to a crash or a pre-empted job. ``EvalModule`` appends every scored row (the rules' verdict,
before any judge) to ``<output dir>/answers/<benchmark>.rank<k>.jsonl`` after each batch; a rerun
with the same output directory reads them back, and only the questions without an answer are
generated again. ``settings.json`` beside them records what produced the answers (policy, weights,
sampling, prompt, benchmark files); a rerun with other settings is refused, naming the
differences, so that answers of two policies are never mixed. A row is matched by its position in
the benchmark file *and* its qid; the files are ``data.shards`` shards, so a torn last line (a crash
mid-write) is dropped and re-answered.

Left out on purpose: generation and scoring (``modules.evaluation``), aggregation (the adapters).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pebr_lit.data.shards import (
    append_rows,
    complete_lines,
    open_shard,
    shard_path,
    shard_paths,
)

ANSWERS_DIR = "answers"


class AnswerLog:
    """Answers of one evaluation run directory, per benchmark.

    Args:
        out_dir: The run's output directory; answers live in its ``answers/`` folder.
        names: Benchmark names, in the module's order.
        rank: This process's rank (each process appends to its own files).
    """

    def __init__(self, out_dir: str | Path, names: Sequence[str], rank: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / ANSWERS_DIR
        self.names = list(names)
        self.rank = rank

    def check_settings(self, settings: dict[str, Any], write: bool) -> None:
        """Refuse answers made with other ``settings``; ``write`` (rank 0) records them for the next run."""
        path = self.dir / "settings.json"
        settings = json.loads(json.dumps(settings, default=str))  # as it reads back from JSON
        if path.is_file():
            before = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(
                k for k in set(before) | set(settings) if k != "benchmarks" and before.get(k) != settings.get(k)
            )
            for name, now in settings.get("benchmarks", {}).items():
                then = before.get("benchmarks", {}).get(name)
                if then is not None and {k: then.get(k) for k in ("class", "path")} != {
                    k: now.get(k) for k in ("class", "path")
                }:
                    changed.append(f"benchmarks.{name}")
            if changed:
                raise ValueError(
                    f"{self.dir} holds answers made with other settings ({', '.join(changed)} differ; see {path}). "
                    "Evaluate into another output_dir, or delete that folder to start over."
                )
        if write:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)

    def load(self, qids: Sequence[Sequence[str]]) -> list[dict[int, dict[str, Any]]]:
        """Per benchmark, ``{index: row}`` of the answers on disk; ``qids[i][index]`` must match each row's qid."""
        out: list[dict[int, dict[str, Any]]] = [{} for _ in self.names]
        for i, name in enumerate(self.names):
            for path in shard_paths(self.dir / f"{name}.jsonl"):
                for n, line in complete_lines(path)[0]:  # a torn last line is re-answered
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise ValueError(
                            f"{path}:{n}: not a JSON answer row; delete the file to re-answer its questions."
                        ) from None
                    index = row.get("index")
                    if not isinstance(index, int) or index >= len(qids[i]):
                        continue  # beyond this run's limit: not asked this time
                    if row.get("qid") != qids[i][index]:
                        raise ValueError(
                            f"{path}:{n}: answer for qid {row.get('qid')!r} at position {index}, where the "
                            f"benchmark file now has {qids[i][index]!r}: the file changed. "
                            f"Delete {self.dir} to start over."
                        )
                    out[i][index] = row
        return out

    def append(self, bench: int, rows: Sequence[dict[str, Any]]) -> None:
        """Append scored rows to this process's shard for benchmark ``bench`` (durable on return)."""
        if not rows:
            return
        handle, _ = open_shard(shard_path(self.dir / f"{self.names[bench]}.jsonl", self.rank))  # cuts a torn tail
        with handle:
            append_rows(handle, rows, allow_nan=True)  # meta may hold a NaN from a benchmark table
