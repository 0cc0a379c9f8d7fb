"""HallusionBench adapter: question/figure/all accuracy by hand, the official JSON, VLMEvalKit TSV keys."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import HallusionBench
from pebr_lit.eval.benchmarks.base import YES_NO
from tests.helpers.benchmark_files import b64_image, hallusion_row, write_json, write_parquet, write_png, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run

HALLUSION = [  # (category, subcategory, set, figure, question, truth)
    ("VD", "chart", "0", "0", "0", "1"),
    ("VD", "chart", "0", "0", "1", "0"),
    ("VD", "chart", "0", "1", "0", "0"),
    ("VD", "chart", "0", "1", "1", "0"),
    ("VS", "map", "1", "1", "0", "1"),
    ("VS", "map", "1", "2", "0", "0"),
]


def test_hallusionbench_question_figure_and_all_accuracy(tmp_path):
    bench = HallusionBench(str(write_parquet(tmp_path / "image-0.parquet", [hallusion_row(*r) for r in HALLUSION])))
    items = bench.items()
    assert (
        items[0].qid == "VD_chart_0_0_0" and items[0].kind == YES_NO and [i.answer for i in items[:2]] == ["yes", "no"]
    )
    # Only VD_chart_0_1_0 is answered wrong ("yes" to a "no" truth).
    replies = ["Yes", "No, it is not.", "Yes.", "no", "yes", "The answer is no"]
    _, agg = run(bench, {i.qid: ANSWER + r for i, r in zip(items, replies)})
    m = agg["metrics"]
    assert m["aAcc"] == m["accuracy"] == pytest.approx(5 / 6)
    # figures: VD fig0 all right, VD fig1 not, VS fig1 and fig2 right -> 3/4
    assert (m["fAcc"], m["figures"]) == (pytest.approx(3 / 4), 4)
    # questions (over figures): VD q0 wrong on fig1, VD q1 right, VS q0 right -> 2/3
    assert (m["qAcc"], m["questions"]) == (pytest.approx(2 / 3), 3)
    # easy: original figures (VD fig0, VS fig1) all right; hard: edited (VD fig1, VS fig2): VD q0 wrong -> 2/3
    assert m["easy_qAcc"] == 1.0 and m["hard_qAcc"] == pytest.approx(2 / 3)
    vd = agg["breakdown"]["category"]["VD"]
    assert (vd["aAcc"], vd["fAcc"], vd["qAcc"]) == (pytest.approx(3 / 4), 0.5, 0.5)


def test_hallusionbench_official_json_skips_text_only_questions(tmp_path):
    write_png(tmp_path / "VD" / "chart" / "0_0.png")
    rows = [
        {**hallusion_row(*HALLUSION[0]), "image": None, "filename": "VD/chart/0_0.png"},
        {**hallusion_row("VS", "map", "1", "0", "0", "1"), "visual_input": "0", "image": None, "filename": None},
    ]
    path = write_json(tmp_path / "HallusionBench.json", rows)
    bench = HallusionBench(str(path))
    assert [i.qid for i in bench.items()] == ["VD_chart_0_0_0"] and bench.skipped_text_only == 1
    assert bench.aggregate([{"correct": True, "meta": bench.items()[0].meta}])["metrics"]["skipped_text_only"] == 1
    with pytest.raises(RecordError, match="field 'visual_input': question without an image"):
        HallusionBench(str(path), skip_text_only=False).items()


def test_hallusionbench_vlmevalkit_tsv_keys_from_index(tmp_path):
    def row(index, category, sub, answer, image):
        return {
            "index": index,
            "category": category,
            "l2-category": sub,
            "question": "Is it so?",
            "answer": answer,
            "image": image,
        }

    tsv = write_tsv(
        tmp_path / "HallusionBench.tsv",
        [
            row("VD_figure_x_0_0_0", "VD", "figure", "Yes", b64_image()),
            row("VD_figure_x_0_1_0", "VD", "figure", "No", "VD_figure_x_0_0_0"),
            row("VD_figure_x_0_0_1", "VD", "figure", "No", "VD_figure_x_0_0_0"),
        ],
    )
    bench = HallusionBench(str(tsv))
    items = bench.items()
    assert [i.qid for i in items] == ["VD_figure_0_0_0", "VD_figure_0_1_0", "VD_figure_0_0_1"]
    assert [i.answer for i in items] == ["yes", "no", "no"] and items[1].images == items[0].images
    # q0 right on figure 0 and wrong on figure 1; q1 right: qAcc 1/2; figure 0 all right, figure 1 not: fAcc 1/2
    _, agg = run(bench, {items[0].qid: ANSWER + "Yes", items[1].qid: ANSWER + "Yes", items[2].qid: ANSWER + "No"})
    assert (agg["metrics"]["qAcc"], agg["metrics"]["fAcc"], agg["metrics"]["aAcc"]) == (0.5, 0.5, pytest.approx(2 / 3))
    bad = write_tsv(tmp_path / "bad.tsv", [row("VD_1", "VD", "figure", "Yes", b64_image())])
    with pytest.raises(RecordError, match="field 'index': index 'VD_1' has no set_id"):
        HallusionBench(str(bad)).items()
