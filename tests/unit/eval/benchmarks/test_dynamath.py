"""DynaMath adapter: variants, float tolerance and worst-case accuracy."""

from __future__ import annotations

from pebr_lit.eval.benchmarks import DynaMath
from tests.helpers.benchmark_files import hf_image, write_parquet
from tests.helpers.benchmark_scoring import ANSWER, run


def test_dynamath_variants_tolerance_and_worst_case(tmp_path):
    def row(seed, truth, atype, subject):
        return {
            "id": seed,
            "question": f"Q{seed}? Choices: (A) 1 (B) 2" if atype == "multiple choice" else f"Q{seed}?",
            "image": f"{seed}.png",
            "decoded_image": hf_image(),
            "ground_truth": truth,
            "answer_type": atype,
            "subject": subject,
            "knowledge_level": "high school",
        }

    for v in (1, 2):
        write_parquet(
            tmp_path / "data" / f"sample_variant{v}-00000-of-00001.parquet",
            [row("1", "3.142", "float", "algebra"), row("2", "B", "multiple choice", "graph")],
        )
    bench = DynaMath(str(tmp_path / "data"))
    items = {i.qid: i for i in bench.items()}
    assert sorted(items) == ["1_v1", "1_v2", "2_v1", "2_v2"]
    assert bench.score(ANSWER + "3.1415", items["1_v1"])["correct"]  # |diff| 0.0005 <= 0.001
    assert not bench.score(ANSWER + "3.14", items["1_v1"])["correct"]  # 0.002 > 0.001
    # seed 1 right in both variants, seed 2 wrong in variant 2: average 3/4, worst case 1/2
    _, agg = run(
        bench, {"1_v1": ANSWER + "3.142", "1_v2": ANSWER + "3.1421", "2_v1": ANSWER + "B", "2_v2": ANSWER + "A"}
    )
    assert agg["metrics"] == {"accuracy": 0.75, "worst_case_accuracy": 0.5, "n": 4, "seeds": 2}
    assert agg["breakdown"]["worst_case_by_subject"] == {
        "algebra": {"accuracy": 1.0, "n": 1},
        "graph": {"accuracy": 0.0, "n": 1},
    }
