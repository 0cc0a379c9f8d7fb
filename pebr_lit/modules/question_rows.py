"""Per-question score rows of a held-out test run, for paired comparisons of two policies.

``write_question_rows`` appends one JSON line per question to ``<log dir>/answers/test.rank<k>.jsonl``:
``{"qid", "scores": {name: [score of each answer]}}``; ``demo.stats`` reads them back and computes the
paired standard error of the difference of two policies evaluated on the same questions.

Left out on purpose: resumable answer logs of benchmark evaluations (``eval.answer_log``), statistics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def rows_path(log_dir: str | Path, rank: int) -> Path:
    """The rows file of one process."""
    return Path(log_dir) / "answers" / f"test.rank{rank}.jsonl"


def write_question_rows(
    path: Path, qids: Sequence[Any], num_samples: int, scores: Mapping[str, Sequence[float]]
) -> None:
    """Append one row per question; ``scores[name]`` holds ``len(qids) * num_samples`` values, question-major."""
    for name, values in scores.items():
        if len(values) != len(qids) * num_samples:
            raise ValueError(
                f"write_question_rows: {name} has {len(values)} scores, not {len(qids)} questions x {num_samples}."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for i, qid in enumerate(qids):
            chunk = slice(i * num_samples, (i + 1) * num_samples)
            row = {"qid": str(qid), "scores": {k: [float(v) for v in vals[chunk]] for k, vals in scores.items()}}
            f.write(json.dumps(row) + "\n")
