"""AI2D adapter: 0-based answer indices in parquet and letters in the VLMEvalKit TSV."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import AI2D
from tests.helpers.benchmark_files import b64_image, hf_image, write_parquet, write_tsv
from tests.helpers.benchmark_scoring import ANSWER


def test_ai2d_parquet_index_answers_and_tsv(tmp_path):
    rows = [
        {"question": "Which stage?", "options": ["egg", "larva", "pupa", "adult"], "answer": "2", "image": hf_image()}
    ]
    (item,) = AI2D(str(write_parquet(tmp_path / "test-0.parquet", rows))).items()
    assert (item.qid, item.answer) == ("1", "C")  # 0-based index 2 -> C; no id column: file order
    assert item.problem.startswith("Question: Which stage?\nOptions:\nA. egg\n")
    assert AI2D("x").score(ANSWER + "pupa", item)["correct"]
    with pytest.raises(RecordError, match="answer index 4 outside the 4 options"):
        AI2D(str(write_parquet(tmp_path / "bad.parquet", [{**rows[0], "answer": "4"}]))).items()
    tsv = write_tsv(
        tmp_path / "AI2D_TEST.tsv",
        [
            {
                "index": 5,
                "question": "Q?",
                "A": "x",
                "B": "y",
                "C": "z",
                "D": "w",
                "answer": "D",
                "category": "life cycles",
                "image": b64_image(),
            }
        ],
    )
    (t,) = AI2D(str(tsv)).items()
    assert (t.qid, t.answer, t.meta["category"]) == ("5", "D", "life cycles")
