"""LogicVista adapter: multi-letter and number answers, skill and capability breakdowns."""

from __future__ import annotations

from pebr_lit.eval.benchmarks import LogicVista
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM
from tests.helpers.benchmark_files import write_json, write_png
from tests.helpers.benchmark_scoring import ANSWER, run


def test_logicvista_multi_letter_and_number_answers(tmp_path):
    for name in ("v1_0.png", "v1_1.png", "v1_2.png"):
        write_png(tmp_path / "images" / name)
    entry = {"reasoning": "r", "imagesource": "s", "sourcelink": "l"}
    path = write_json(
        tmp_path / "dataset.json",
        {
            "v1_0": {
                "imagename": "v1_0.png",
                "question": "Which belong to green?",
                "answer": "A, C",
                "skill": ["inductive"],
                "broad_capability": ["diagram"],
                "specific_capability": ["rule based pattern"],
                **entry,
            },
            "v1_1": {
                "imagename": "v1_1.png",
                "question": "How many triangles? A) 10 B) 12 C) 14 D) 16",
                "answer": "C",
                "skill": ["inductive", "numerical"],
                "broad_capability": ["diagram and ocr"],
                "specific_capability": ["chart"],
                **entry,
            },
            "v1_2": {
                "imagename": "v1_2.png",
                "question": "Which statement? Select from 1-5",
                "answer": "3",
                "skill": ["deductive"],
                "broad_capability": ["ocr"],
                "specific_capability": ["chart"],
                **entry,
            },
        },
    )
    bench = LogicVista(str(path))
    multi, single, number = bench.items()
    assert multi.kind == CHOICE and number.kind == FREE_FORM and single.options == ("10", "12", "14", "16")
    assert bench.score(ANSWER + "C and A", multi)["correct"] and not bench.score(ANSWER + "A", multi)["correct"]
    assert bench.score(ANSWER + "14", single)["correct"] and bench.score(ANSWER + "3", number)["correct"]
    _, agg = run(bench, {"v1_0": ANSWER + "A, C", "v1_1": ANSWER + "B", "v1_2": ANSWER + "3"})
    assert agg["breakdown"]["skill"] == {
        "deductive": {"accuracy": 1.0, "n": 1},
        "inductive": {"accuracy": 0.5, "n": 2},
        "numerical": {"accuracy": 0.0, "n": 1},
    }
    assert agg["breakdown"]["specific_capability"] == {
        "chart": {"accuracy": 0.5, "n": 2},
        "rule based pattern": {"accuracy": 1.0, "n": 1},
    }
