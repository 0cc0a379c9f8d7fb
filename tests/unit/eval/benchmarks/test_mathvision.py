"""MathVision adapter: JSONL with image paths and the VLMEvalKit TSV choices column."""

from __future__ import annotations

from pebr_lit.eval.benchmarks import MathVision
from pebr_lit.eval.benchmarks.base import FREE_FORM
from tests.helpers.benchmark_files import b64_image, write_json, write_png, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run


def test_mathvision_jsonl_with_image_paths(tmp_path):
    for i in (1, 2, 3):
        write_png(tmp_path / "images" / f"{i}.jpg")
    path = write_json(
        tmp_path / "data" / "testmini.jsonl",
        [
            {
                "id": "1",
                "question": "Which?\n<image1>",
                "options": ["A", "B", "C", "D", "E"],
                "answer": "D",
                "solution": None,
                "level": 1,
                "subject": "logic",
                "image": "images/1.jpg",
            },
            {
                "id": "2",
                "question": "Which colour?",
                "options": ["red", "blue", "green"],
                "answer": "A",
                "solution": None,
                "level": 3,
                "subject": "logic",
                "image": "images/2.jpg",
            },
            {
                "id": "3",
                "question": "How many?",
                "options": [],
                "answer": "61",
                "solution": None,
                "level": 3,
                "subject": "arithmetic",
                "image": "images/3.jpg",
            },
        ],
        lines=True,
    )
    bench = MathVision(str(path), image_root=str(tmp_path))
    a, b, c = bench.items()
    assert b.problem == "Which colour?\nChoices:\n(A) red\n(B) blue\n(C) green" and c.kind == FREE_FORM
    assert bench.score(ANSWER + "red", b)["correct"]  # MATH-V: option text counts as the letter
    assert bench.score(ANSWER + "\\boxed{61}", c)["correct"]
    _, agg = run(bench, {"1": ANSWER + "(D)", "2": ANSWER + "blue", "3": ANSWER + "61"})
    assert agg["breakdown"]["level"] == {"1": {"accuracy": 1.0, "n": 1}, "3": {"accuracy": 0.5, "n": 2}}
    assert agg["breakdown"]["subject"]["logic"] == {"accuracy": 0.5, "n": 2}


def test_mathvision_vlmevalkit_tsv_choices_column(tmp_path):
    tsv = write_tsv(
        tmp_path / "MathVision_MINI.tsv",
        [
            {
                "index": 4,
                "question": "Which shape?",
                "choices": "['cube', 'cone']",
                "answer": "B",
                "category": "solid geometry",
                "level": 2,
                "image": b64_image(),
            },
            {
                "index": 5,
                "question": "How many?",
                "choices": "[]",
                "answer": "7",
                "category": "counting",
                "level": "",
                "image": b64_image(),
            },
        ],
    )
    shape, count = MathVision(str(tsv)).items()
    assert shape.problem == "Which shape?\nChoices:\n(A) cube\n(B) cone" and shape.meta == {
        "subject": "solid geometry",
        "level": "2",
    }
    assert (count.kind, count.meta["level"]) == (FREE_FORM, None)
    assert MathVision("x").score(ANSWER + "cone", shape)["correct"]
