"""Paired standard error of a difference of two policies' held-out scores on the same questions.

Two policies evaluated on the same questions (k answers each) differ by the mean over questions of
``d_q = mean(scores_B[q]) - mean(scores_A[q])``; its standard error is ``sd(d) / sqrt(n)`` (sample
sd, n - 1). Pairing removes the question-difficulty variance that the unpaired bound
(``report._noise``) counts twice, so it is usually much smaller.

Per-question rows are read from ``<eval dir>/answers/test.rank<k>.jsonl``: one JSON object a line,
``{"qid": ..., "scores": {"accuracy": [...], "keyword": [...], ...}}``. Nothing here writes them.

Left out on purpose: the unpaired fallback and the report's wording (``demo.report``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

Scores = Mapping[str, Sequence[float]]


def paired_difference(a: Scores, b: Scores) -> tuple[float, float, int]:
    """``(mean difference b - a, its paired standard error, n questions)`` over the questions both hold.

    Both must hold the same questions: a question in one only raises, naming it (the two
    evaluations did not answer the same split, so pairing them would be wrong).
    """
    only = sorted(set(a) ^ set(b))
    if only:
        raise ValueError(
            f"paired_difference: {len(only)} question(s) evaluated by one policy only (e.g. {only[0]!r}); "
            "evaluate both policies on the same test split and limit."
        )
    diffs = []
    for qid in sorted(a):
        if not a[qid] or not b[qid]:
            raise ValueError(f"paired_difference: question {qid!r} has no scores in one of the two evaluations.")
        diffs.append(sum(b[qid]) / len(b[qid]) - sum(a[qid]) / len(a[qid]))
    n = len(diffs)
    if n < 2:
        raise ValueError(f"paired_difference: {n} question(s); a standard error needs at least 2.")
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return mean, math.sqrt(var / n), n


def read_question_scores(eval_dir: str | Path, key: str) -> dict[str, list[float]] | None:
    """``{qid: scores}`` of one metric from an evaluation's answer rows; None when no file or no row logs it.

    Some rows with ``key`` and some without, or a qid seen twice, raises, naming the file and line.
    """
    files = sorted((Path(eval_dir) / "answers").glob("test.rank*.jsonl"))
    if not files:
        return None
    out: dict[str, list[float]] = {}
    missing = ""
    for path in files:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            scores = row.get("scores", {}).get(key)
            if scores is None:
                missing = missing or f"{path}:{i}"
                continue
            if row["qid"] in out:
                raise ValueError(f"{path}:{i}: question {row['qid']!r} seen twice; delete {path.parent} and rerun.")
            out[row["qid"]] = [float(s) for s in scores]
    if missing and out:
        raise ValueError(f"{missing}: no scores.{key} in this row while others have it; rerun the evaluation.")
    return out or None
