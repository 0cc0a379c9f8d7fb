"""MMStar adapter: inline options in parquet and the VLMEvalKit TSV layout."""

from __future__ import annotations

from pebr_lit.eval.benchmarks import MMStar
from tests.helpers.benchmark_files import b64_image, hf_image, write_parquet, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run

MMSTAR_Q = "Which option describes the image?\nOptions: A: a red square, B: a blue circle, C: a green cat, D: nothing"


def test_mmstar_parquet_inline_options_and_tsv(tmp_path):
    base = {
        "question": MMSTAR_Q,
        "image": hf_image(),
        "category": "coarse perception",
        "l2_category": "image emotion",
        "meta_info": {"source": "MMBench", "split": "val", "image_path": "x.png"},
    }
    parquet = write_parquet(
        tmp_path / "mmstar.parquet",
        [{"index": 0, "answer": "A", **base}, {"index": 1, "answer": "C", **base, "category": "math"}],
    )
    bench = MMStar(str(parquet))
    a, b = bench.items()
    assert a.problem == (
        "Question: Which option describes the image?\nOptions:\nA. a red square\nB. a blue circle\nC. a green cat\n"
        "D. nothing\nPlease select the correct answer from the options above."
    )
    assert a.options == ("a red square", "a blue circle", "a green cat", "nothing")
    assert bench.score(ANSWER + "A red square", a)["correct"] and not bench.score(ANSWER + "B", a)["correct"]
    _, agg = run(bench, {"0": ANSWER + "A", "1": ANSWER + "(D)"})
    assert agg["breakdown"]["category"] == {
        "coarse perception": {"accuracy": 1.0, "n": 1},
        "math": {"accuracy": 0.0, "n": 1},
    }

    tsv = write_tsv(
        tmp_path / "MMStar.tsv",
        [
            {
                "index": 7,
                "question": "Which?",
                "A": "cat",
                "B": "dog",
                "C": "",
                "D": "",
                "answer": "B",
                "category": "math",
                "l2-category": "geometry",
                "image": b64_image(),
            }
        ],
    )
    (item,) = MMStar(str(tsv)).items()
    assert (
        item.problem
        == "Question: Which?\nOptions:\nA. cat\nB. dog\nPlease select the correct answer from the options above."
    )
    assert (
        item.options == ("cat", "dog")
        and item.meta["l2_category"] == "geometry"
        and item.load_images()[0].size == (56, 56)
    )
