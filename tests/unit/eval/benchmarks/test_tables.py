"""Benchmark tables: a VLMEvalKit TSV's bad base64 image names its column."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import MMStar
from tests.helpers.benchmark_files import write_tsv


def test_tsv_bad_base64_names_the_column(tmp_path):
    tsv = write_tsv(
        tmp_path / "MMStar.tsv",
        [{"index": 1, "question": "Q", "A": "x", "B": "y", "answer": "A", "image": "not base64!"}],
    )
    with pytest.raises(RecordError, match="field 'image': not base64 image data"):
        MMStar(str(tsv)).items()
