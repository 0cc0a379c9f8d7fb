"""MathVerse adapter: prompt columns, problem versions, the refused text-only file, VLMEvalKit TSV."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import MathVerse
from tests.helpers.benchmark_files import b64_image, hf_image, write_parquet, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run


def mathverse_row(index: str, version: str, qtype: str, answer: str, question: str, image=True) -> dict:
    choices = "\nChoices:\nA:30°\nB:40°\nC:50°\nD:60°" if qtype == "multi-choice" else ""
    return {
        "sample_index": index,
        "problem_index": "1",
        "problem_version": version,
        "question": question,
        "image": hf_image() if image else None,
        "answer": answer,
        "question_type": qtype,
        "metadata": {"split": "testmini", "source": "GeoQA", "subject": "plane geometry", "subfield": "angle"},
        "query_wo": f"Please directly answer. Question: {question}{choices}",
        "query_cot": f"Please first conduct reasoning. Question: {question}{choices}",
        "question_for_eval": f"What is angle ABC?{choices}",
    }


def test_mathverse_prompt_options_and_versions(tmp_path):
    path = write_parquet(
        tmp_path / "testmini.parquet",
        [
            mathverse_row("1", "Text Dominant", "multi-choice", "B", "What is angle ABC?"),
            mathverse_row("2", "Vision Only", "multi-choice", "B", ""),  # the question lives in the image
            mathverse_row("3", "Text Lite", "free-form", "\\frac{1}{2}", "Find x."),
        ],
    )
    a, b, c = MathVerse(str(path)).items()
    assert a.problem.startswith("Please first conduct reasoning") and a.options == ("30°", "40°", "50°", "60°")
    assert b.problem.startswith("Please first conduct reasoning")  # query_cot even when `question` is empty
    assert MathVerse(str(path), prompt="query_wo").items()[0].problem.startswith("Please directly answer")
    bench = MathVerse(str(path))
    assert bench.score(ANSWER + "40°", a)["correct"] and bench.score(ANSWER + "B", b)["correct"]
    assert bench.score(ANSWER + "0.5", c)["correct"]  # math-aware: \frac{1}{2} == 0.5
    _, agg = run(bench, {"1": ANSWER + "B", "2": ANSWER + "A", "3": ANSWER + "1/2"})
    assert agg["breakdown"]["problem_version"] == {
        "Text Dominant": {"accuracy": 1.0, "n": 1},
        "Text Lite": {"accuracy": 1.0, "n": 1},
        "Vision Only": {"accuracy": 0.0, "n": 1},
    }
    assert agg["metrics"]["accuracy"] == pytest.approx(2 / 3)


def test_mathverse_text_only_file_is_refused(tmp_path):
    path = write_parquet(
        tmp_path / "testmini_text_only.parquet", [mathverse_row("1", "Text Only", "free-form", "2", "q", image=False)]
    )
    with pytest.raises(RecordError, match="field 'image': no image \\(text-only version\\)"):
        MathVerse(str(path)).items()


def test_mathverse_vlmevalkit_tsv_metadata_string_and_shared_image(tmp_path):
    base = {
        "problem_index": "7",
        "question_type": "multi-choice",
        "answer": "C",
        "metadata": "{'split': 'testmini', 'source': 'GeoQA', 'subject': 'plane geometry', 'subfield': 'length'}",
        "question_for_eval": "Find AB.\nChoices:\nA:3\nB:4\nC:5\nD:6",
    }
    tsv = write_tsv(
        tmp_path / "MathVerse_MINIV.tsv",
        [
            {
                "index": 10,
                "problem_version": "Text Dominant",
                "question": "Find AB.",
                "query_cot": "Reason first. Find AB.",
                "image": b64_image(),
                **base,
            },
            {
                "index": 11,
                "problem_version": "Vision Only",
                "question": "",
                "query_cot": "Reason first.",
                "image": "10",
                **base,
            },
        ],
    )
    text, vision = MathVerse(str(tsv)).items()
    assert (text.qid, text.problem, text.options) == ("10", "Reason first. Find AB.", ("3", "4", "5", "6"))
    assert (vision.meta["subject"], vision.meta["subfield"], vision.images) == ("plane geometry", "length", text.images)
    assert MathVerse(str(tsv)).score(ANSWER + "5", vision)["correct"]  # option text -> C
