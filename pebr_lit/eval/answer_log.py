"""Resumable benchmark evaluation: scored answers appended to disk as they are made, read back on a rerun.

A long evaluation (a 7B policy, thousands of questions, up to 2048 new tokens each) should not be
lost to a crash or a pre-empted job. ``EvalModule`` appends every scored row (the rules' verdict,
before any judge) to ``<output dir>/answers/<benchmark>.rank<k>.jsonl`` after each batch; a rerun
with the same output directory reads them back, and only the questions without an answer are
generated again. ``settings.json`` beside them records what produced the answers (policy, weights,
sampling, instruction, benchmark files); a rerun with other settings is refused, naming the
differences, so that answers of two policies are never mixed. A row is matched by its position in
the benchmark file *and* its qid; a cut last line (a crash mid-write) is dropped and re-answered.

Left out on purpose: generation and scoring (``modules.evaluation``), aggregation (the adapters).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

ANSWERS_DIR = "answers"


class AnswerLog:
    """Answers of one evaluation run directory, per benchmark.

    Args:
        out_dir: The run's output directory; answers live in its ``answers/`` folder.
        names: Benchmark names, in the module's order.
        rank: This process's rank (each process appends to its own files).
    """

    def __init__(self, out_dir: str | Path, names: Sequence[str], rank: int = 0) -> None:
        self.dir = Path(out_dir) / ANSWERS_DIR
        self.names = list(names)
        self.rank = rank

    def check_settings(self, settings: dict[str, Any], write: bool) -> None:
        """Refuse answers made with other ``settings``; ``write`` (rank 0) records them for the next run."""
        path = self.dir / "settings.json"
        settings = json.loads(json.dumps(settings, default=str))  # as it reads back from JSON
        if path.is_file():
            before = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(k for k in set(before) | set(settings) if k != "benchmarks" and before.get(k) != settings.get(k))
            for name, now in settings.get("benchmarks", {}).items():
                then = before.get("benchmarks", {}).get(name)
                if then is not None and {k: then.get(k) for k in ("class", "path")} != {k: now.get(k) for k in ("class", "path")}:
                    changed.append(f"benchmarks.{name}")
            if changed:
                raise ValueError(
                    f"{self.dir} holds answers made with other settings ({', '.join(changed)} differ; see {path}). "
                    "Evaluate into another output_dir, or delete that folder to start over.")
        if write:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)

    def load(self, qids: Sequence[Sequence[str]]) -> list[dict[int, dict[str, Any]]]:
        """Per benchmark, ``{index: row}`` of the answers on disk; ``qids[i][index]`` must match each row's qid."""
        out: list[dict[int, dict[str, Any]]] = [{} for _ in self.names]
        for i, name in enumerate(self.names):
            for path in sorted(self.dir.glob(f"{name}.rank*.jsonl")):
                for n, row in _rows(path):
                    index = row.get("index")
                    if not isinstance(index, int) or index >= len(qids[i]):
                        continue  # beyond this run's limit: not asked this time
                    if row.get("qid") != qids[i][index]:
                        raise ValueError(f"{path}:{n}: answer for qid {row.get('qid')!r} at position {index}, where the "
                                         f"benchmark file now has {qids[i][index]!r}: the file changed. Delete {self.dir} to start over.")
                    out[i][index] = row
        return out

    def append(self, bench: int, rows: Sequence[dict[str, Any]]) -> None:
        """Append scored rows to this process's file for benchmark ``bench`` (flushed, one JSON line each)."""
        if not rows:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.names[bench]}.rank{self.rank}.jsonl"
        _drop_cut_line(path)
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())


def _drop_cut_line(path: Path) -> None:
    """Cut a crashed run's unfinished last line off the file (only its own process appends to it)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a JSONL file; a cut last line is dropped, a bad inner line is an error."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except ValueError:
            if n == len(lines):  # no newline after it: written when the run died
                continue
            raise ValueError(f"{path}:{n}: not a JSON answer row; delete the file to re-answer its questions.") from None
    return out
