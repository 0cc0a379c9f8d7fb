"""The same question reads the same whichever released layout it came from: prompt, options, truth and verdicts.

Each case writes one question in two of an adapter's layouts (the Hugging Face / repository file and
VLMEvalKit's TSV, columns as each adapter's docstring gives them) and scores the same responses under every
scoring mode; the expected equality needs no derivation: one question, one prompt, one verdict.
"""

from __future__ import annotations

from pathlib import Path

from pebr_lit.eval.benchmarks import MMMU, DynaMath, MathVerse, MathVision, MathVista, WeMath
from pebr_lit.eval.benchmarks.base import Benchmark
from tests.helpers.benchmark_files import (
    b64_image,
    dynamath_row,
    mathverse_row,
    mathvision_row,
    mathvista_row,
    mmmu_row,
    wemath_row,
    write_json,
    write_parquet,
    write_png,
    write_tsv,
)
from tests.helpers.benchmark_scoring import ANSWER

RESPONSES = ["B", "(A)", "The answer is A or B.", "8/11", "cone", "12cm", "1.25", "1.254", "30", "5", "3.142", "2", "E"]


def assert_same_question(adapter: type[Benchmark], first: Path, second: Path, **kwargs) -> None:
    a, b = (adapter(str(p), **kwargs).items() for p in (first, second))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.qid, x.problem, x.options, x.answer, x.kind) == (y.qid, y.problem, y.options, y.answer, y.kind)
        assert x.meta.get("precision") == y.meta.get("precision")
        for mode in adapter.scoring_modes:
            bench = adapter("unused", scoring=mode, **kwargs)
            verdicts = [[bench.score(ANSWER + text, item)["correct"] for item in (x, y)] for text in RESPONSES]
            assert all(a == b for a, b in verdicts), (mode, x.qid, verdicts)
            assert any(a for a, _ in verdicts), (mode, x.qid)  # some response is right: the comparison means something


def test_mathvista_parquet_and_vlmevalkit_tsv(tmp_path):
    rows = [
        mathvista_row("1", "multi_choice", "8/11", ["3/11", "8/11"]),
        mathvista_row("2", "free_form", "1.25", None, "float", precision=2.0),
    ]
    parquet = write_parquet(tmp_path / "testmini-00000-of-00001.parquet", rows)
    tsv_rows = [
        {
            "index": r["pid"],
            "question": r["query"],  # VLMEvalKit's question column is MathVista's query
            "answer": r["answer"],
            "answer_option": "B" if r["choices"] else "",
            "choices": str(r["choices"]) if r["choices"] else "",
            "question_type": r["question_type"],
            "answer_type": r["answer_type"],
            "precision": "" if r["precision"] is None else str(r["precision"]),
            "task": "figure question answering",
            "skills": "['arithmetic reasoning']",
            "image": b64_image(),
        }
        for r in rows
    ]
    assert_same_question(MathVista, parquet, write_tsv(tmp_path / "MathVista_MINI.tsv", tsv_rows))


def test_mathvision_jsonl_and_vlmevalkit_tsv(tmp_path):
    write_png(tmp_path / "images" / "1.jpg")
    write_png(tmp_path / "images" / "2.jpg")
    rows = [mathvision_row("1", ["cube", "cone"], "B"), mathvision_row("2", [], "5")]
    jsonl = write_json(tmp_path / "test.jsonl", rows, lines=True)
    tsv_rows = [
        {
            "index": r["id"],
            "question": r["question"],
            "choices": str(r["options"]),
            "answer": r["answer"],
            "category": r["subject"],
            "level": r["level"],
            "image": b64_image(),
        }
        for r in rows
    ]
    assert_same_question(MathVision, jsonl, write_tsv(tmp_path / "MathVision.tsv", tsv_rows))


def test_mathverse_parquet_and_vlmevalkit_tsv(tmp_path):
    rows = [mathverse_row("1", "multi-choice", "A"), mathverse_row("2", "free-form", "30")]
    parquet = write_parquet(tmp_path / "testmini.parquet", rows)
    keep = ("problem_index", "problem_version", "question", "query_cot", "question_type", "question_for_eval", "answer")
    tsv_rows = [
        {"index": r["sample_index"], **{k: r[k] for k in keep}, "metadata": str(r["metadata"]), "image": b64_image()}
        for r in rows
    ]
    assert_same_question(MathVerse, parquet, write_tsv(tmp_path / "MathVerse_MINI.tsv", tsv_rows))


def test_wemath_json_and_vlmevalkit_tsv(tmp_path):
    write_png(tmp_path / "testmini" / "a.png")
    rows = [wemath_row("P1", "2steps_1", "B"), wemath_row("P1", "2steps_multi", "E")]
    json_file = write_json(tmp_path / "testmini.json", rows)
    options = {"A": "9cm", "B": "12cm", "C": "15cm", "D": "18cm", "E": "No correct answer"}
    tsv_rows = [
        {"index": i, "ID": r["ID"], "key": r["key"], "question": r["question"], **options, "answer": r["answer"]}
        | {"image": b64_image()}
        for i, r in enumerate(rows)
    ]
    assert_same_question(WeMath, json_file, write_tsv(tmp_path / "WeMath.tsv", tsv_rows))


def test_mmmu_parquet_and_vlmevalkit_tsv(tmp_path):
    rows = [mmmu_row("validation_Art_1", "['12cm', 'cone']", "B"), mmmu_row("validation_Art_2", "[]", "5")]
    parquet = write_parquet(tmp_path / "Art" / "validation-00000-of-00001.parquet", rows)
    tsv_rows = [
        {
            "index": i,
            "id": r["id"],
            "question": r["question"],
            "A": "12cm" if r["options"] != "[]" else "",
            "B": "cone" if r["options"] != "[]" else "",
            "answer": r["answer"],
            "split": "validation",
            "image": b64_image(),
        }
        for i, r in enumerate(rows)
    ]
    assert_same_question(MMMU, parquet, write_tsv(tmp_path / "MMMU_DEV_VAL.tsv", tsv_rows))


def test_dynamath_parquet_and_vlmevalkit_tsv(tmp_path):
    rows = [dynamath_row("1"), dynamath_row("2", "B", "multiple choice")]
    parquet = write_parquet(tmp_path / "sample_variant1-00000-of-00001.parquet", rows)
    tsv_rows = [
        {
            "index": i,
            "qid": r["id"],
            "varid": "1",
            "question": r["question"],
            "answer": r["ground_truth"],
            "answer_type": r["answer_type"],
            "subject": r["subject"],
            "knowledge_level": r["knowledge_level"],
            "image": b64_image(),
        }
        for i, r in enumerate(rows)
    ]
    assert_same_question(DynaMath, parquet, write_tsv(tmp_path / "DynaMath.tsv", tsv_rows))
