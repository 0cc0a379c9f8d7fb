"""MathVista adapter: parquet and VLMEvalKit TSV layouts, option letters, precision and list answers."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import MathVista
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM
from tests.helpers.benchmark_files import b64_image, mathvista_row, write_parquet, write_png, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run


def test_mathvista_parquet_items_and_scoring(tmp_path):
    write_parquet(
        tmp_path / "data" / "testmini-00000-of-00001.parquet",
        [
            mathvista_row(
                "1",
                "multi_choice",
                "8/11",
                ["3/11", "8/11", "6/11"],
                skills=("arithmetic reasoning", "algebraic reasoning"),
            ),
            mathvista_row("2", "free_form", "1.5", answer_type="float", precision=1.0, task="math word problem"),
            mathvista_row("3", "free_form", "[2007, 2008]", answer_type="list"),
        ],
    )
    bench = MathVista(str(tmp_path / "data"))  # the folder, read by split name
    mc, flt, lst = bench.items()
    assert (mc.kind, mc.answer, mc.options) == (CHOICE, "B", ("3/11", "8/11", "6/11"))  # option text -> letter
    assert mc.problem.endswith("(B) 8/11\n(C) 6/11") and mc.problem.startswith("Hint:")  # the `query` column
    assert isinstance(mc.images[0], bytes) and mc.load_images()[0].size == (56, 56)
    assert (flt.kind, flt.meta["precision"]) == (FREE_FORM, 1)

    assert bench.score(ANSWER + "(B)", mc)["correct"]
    assert bench.score(ANSWER + "8/11", mc)["correct"]  # option text instead of letter
    assert not bench.score(ANSWER + "3/11", mc)["correct"]
    official = MathVista(str(tmp_path / "data"), scoring="official")
    assert official.score(ANSWER + "1.46", flt)["correct"]  # rounds to 1 decimal: 1.5
    assert not bench.score(ANSWER + "1.46", flt)["correct"]  # VLMEvalKit compares exact floats
    assert not official.score(ANSWER + "1.4", flt)["correct"]
    assert bench.score("1.5", flt)["correct"]  # no heading: the whole response is the answer

    # 1 and 3 right (3 by the official rule: VLMEvalKit never credits a list), 2 wrong: accuracy 2/3; skills
    # count item 1 under both of its skills.
    rows, agg = run(official, {"1": ANSWER + "B", "2": ANSWER + "7", "3": ANSWER + "[2007, 2008]"})
    assert agg["metrics"] == {"accuracy": pytest.approx(2 / 3), "n": 3}
    assert agg["breakdown"]["skills"]["algebraic reasoning"] == {"accuracy": 1.0, "n": 1}
    assert agg["breakdown"]["skills"]["arithmetic reasoning"] == {"accuracy": pytest.approx(2 / 3), "n": 3}
    assert agg["breakdown"]["task"]["math word problem"] == {"accuracy": 0.0, "n": 1}


def test_mathvista_errors_name_the_column_and_the_image(tmp_path):
    hidden = mathvista_row("9", "free_form", "", answer_type="integer")
    with pytest.raises(RecordError, match="field 'answer'.*testmini"):
        MathVista(str(write_parquet(tmp_path / "test.parquet", [hidden]))).items()
    no_query = {k: v for k, v in mathvista_row("1", "free_form", "2").items() if k != "query"}
    with pytest.raises(RecordError, match=r"row 1: field 'query': missing column 'query'.*AI4Math/MathVista"):
        MathVista(str(write_parquet(tmp_path / "a.parquet", [no_query]))).items()
    path_only = {**mathvista_row("1", "free_form", "2"), "decoded_image": None}  # image = "images/1.jpg", not unpacked
    with pytest.raises(RecordError, match="field 'image': image file not found: .*images/1.jpg"):
        MathVista(str(write_parquet(tmp_path / "b.parquet", [path_only]))).items()
    write_png(tmp_path / "images" / "1.jpg")
    assert MathVista(str(tmp_path / "b.parquet")).items()[0].images == (str(tmp_path / "images" / "1.jpg"),)


def test_mathvista_vlmevalkit_tsv(tmp_path):
    tsv = write_tsv(
        tmp_path / "MathVista_MINI.tsv",
        [
            {
                "index": 1,
                "question": "Hint: pick one.\nQuestion: Which?\nChoices:\n(A) 3/11\n(B) 8/11",
                "answer": "8/11",
                "answer_option": "B",
                "choices": "['3/11', '8/11']",
                "question_type": "multi_choice",
                "answer_type": "text",
                "precision": "",
                "task": "geometry problem solving",
                "skills": "['geometry reasoning', 'algebraic reasoning']",
                "image": b64_image(),
            },
            {
                "index": 2,
                "question": "Hint: two decimals.\nQuestion: How long?",
                "answer": "1.25",
                "answer_option": "",
                "choices": "",
                "question_type": "free_form",
                "answer_type": "float",
                "precision": "2.0",
                "task": "figure question answering",
                "skills": "['arithmetic reasoning']",
                "image": "1",
            },  # row 1's image
        ],
    )
    bench = MathVista(str(tsv))
    mc, flt = bench.items()
    assert (mc.qid, mc.kind, mc.answer, mc.options) == ("1", CHOICE, "B", ("3/11", "8/11"))
    assert mc.problem.count("(B) 8/11") == 1  # the TSV's question already lists the choices
    assert (
        mc.meta["skills"] == ["geometry reasoning", "algebraic reasoning"]
        and mc.meta["task"] == "geometry problem solving"
    )
    assert (flt.kind, flt.meta["precision"], flt.images) == (FREE_FORM, 2, mc.images)
    official = MathVista(str(tsv), scoring="official")
    assert official.score(ANSWER + "1.254", flt)["correct"] and not official.score(ANSWER + "1.26", flt)["correct"]
