"""MMStar, AI2D, HallusionBench, LogicVista: scoring modes per benchmark, cut-off responses, inputs that cannot mix.

Expected verdicts come from running the official functions on these strings (outside this repository):
VLMEvalKit ``can_infer`` / ``YOrN_Extraction`` (open-compass/VLMEvalKit e8e78f05f3080fe28154f2130321f17951c3be94)
and MMStar's ``MMStar_eval`` (MMStar-Benchmark/MMStar eval/vlmeval/evaluate/mmstar.py,
79e6d1cbab00576162fc8c878a4ad584f98b4868).
"""

from __future__ import annotations

import logging

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.answers import extract_choice
from pebr_lit.eval.benchmarks import AI2D, HallusionBench, LogicVista, MMStar
from pebr_lit.eval.cutoffs import response_counts
from tests.helpers.benchmark_files import b64_image, hallusion_row, hf_image, write_json, write_parquet, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run

OPTIONS = ("a red square", "a blue circle", "a green triangle", "nothing")
PARQUET_Q = "Which shape is shown?\nOptions: A: a red square, B: a blue circle, C: a green triangle, D: nothing"
LONG = (
    "### Image Description: the figure shows a shape. ### Rationales: looking at the figure, the shape in the "
    "middle looks round and its colour seems to be blue, like a blue circle, but the outline"
)  # cut off at max_new_tokens before "### The final answer is:"


def mmstar_files(tmp_path):
    row = {"index": 3, "answer": "B", "category": "math", "image": hf_image()}
    parquet = write_parquet(tmp_path / "mmstar.parquet", [{**row, "question": PARQUET_Q, "l2_category": "geometry"}])
    cells = dict(zip("ABCD", OPTIONS))
    tsv_row = {**row, "question": "Which shape is shown?", **cells, "l2-category": "geometry", "image": b64_image()}
    return parquet, write_tsv(tmp_path / "MMStar.tsv", [tsv_row])


def test_mmstar_prompt_and_verdicts_are_the_same_from_parquet_and_tsv(tmp_path):
    parquet, tsv = mmstar_files(tmp_path)
    (p,), (t,) = MMStar(str(parquet)).items(), MMStar(str(tsv)).items()
    assert p.problem == t.problem and p.options == t.options == OPTIONS
    for response in ("B", "a blue circle", "A blue circle", LONG, "B or C"):
        assert MMStar("x").score(ANSWER + response, p) == MMStar("x").score(ANSWER + response, t)


@pytest.mark.parametrize(
    ("answer", "vlmevalkit", "official"),
    [
        ("B", True, True),
        ("(b)", False, True),  # can_infer reads upper-case letters; MMStar_eval lower-cases first
        ("The answer is B", True, True),
        ("Answer: B", True, False),  # MMStar_eval knows only "(", "option " and "the answer is " before the letter
        ("**B**", True, False),
        ("a blue circle", True, False),  # choice text: can_infer_text; MMStar_eval reads only a leading letter
        ("Because it is round.", False, True),  # MMStar_eval: the first character "b" is the letter B
        ("The image shows a blue circle on a white background.", True, False),  # a sentence answer
        ("B or C", False, True),  # hedged: can_infer names no option; MMStar_eval takes the first letter
        ("\\boxed{B}", True, False),  # LaTeX
    ],
)
def test_mmstar_vlmevalkit_and_official_modes(tmp_path, answer, vlmevalkit, official):
    """vlmevalkit follows VLMEvalKit ``can_infer``; official follows MMStar's ``MMStar_eval``."""
    (item,) = MMStar(str(mmstar_files(tmp_path)[1])).items()
    assert MMStar("x").score(ANSWER + answer, item)["correct"] is vlmevalkit
    assert MMStar("x", scoring="official").score(ANSWER + answer, item)["correct"] is official


def ai2d_item(tmp_path):
    rows = [{"question": "Which shape?", "options": list(OPTIONS), "answer": "1", "image": hf_image()}]
    (item,) = AI2D(str(write_parquet(tmp_path / "test-00000-of-00001.parquet", rows))).items()
    return item


def test_ai2d_gives_no_credit_for_option_text_in_a_long_or_cut_off_response(tmp_path):
    """VLMEvalKit ``can_infer_text``: option text counts only within 2 x the options' total length."""
    item = ai2d_item(tmp_path)
    bench = AI2D("x")
    assert bench.score(ANSWER + "a blue circle", item)["correct"]
    cut = bench.score(LONG, item)
    assert (cut["choice"], cut["correct"]) == (None, False)
    assert extract_choice(LONG, OPTIONS) is None  # the shared lenient matcher keeps the same limit
    rows = [{**cut, "truncated": True, "response": LONG}, {**bench.score(ANSWER + "B", item), "response": ANSWER + "B"}]
    assert response_counts(rows) == {"truncated": 0.5, "truncated_n": 1, "truncated_correct": 0, "no_answer_section": 1}


def test_official_scoring_is_refused_where_no_scorer_is_released():
    with pytest.raises(ValueError, match=r"AI2D.scoring='official': AI2D releases no answer scorer"):
        AI2D("x", scoring="official")
    with pytest.raises(ValueError, match=r"HallusionBench.scoring='official': .*GPT-4 judge"):
        HallusionBench("x", scoring="official")
    with pytest.raises(ValueError, match=r"LogicVista.scoring='official': .*no scorer"):
        LogicVista("x", scoring="official")
    assert MMStar("x", scoring="official").scoring == "official"


def test_hallusionbench_reads_yes_no_as_yorn_extraction(tmp_path):
    """Follows VLMEvalKit ``YOrN_Extraction``: both words or neither are Unknown (wrong)."""
    path = write_parquet(tmp_path / "image-00000-of-00001.parquet", [hallusion_row("VD", "figure", "0", "0", "0", "1")])
    bench = HallusionBench(str(path))
    responses = {"Yes, the bar is taller.": True, "No, it says yes": False, "**YES**": False, "(yes)": True}
    (item,) = bench.items()
    assert {r: bench.score(ANSWER + r, item)["correct"] for r in responses} == responses


def test_logicvista_long_response_naming_option_text_gets_no_credit(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "v1_1.png").write_bytes(hf_image()["bytes"])
    entry = {"imagename": "v1_1.png", "answer": "B", "skill": [], "broad_capability": [], "specific_capability": []}
    write_json(tmp_path / "dataset.json", {"v1_1": {**entry, "question": "Which? (A) 10 (B) 12 (C) 14 (D) 16"}})
    bench = LogicVista(str(tmp_path))
    (item,) = bench.items()
    assert bench.score(ANSWER + "12", item)["correct"]
    cut = "Counting the rows gives 12 so far, then the next rows add more and more and"  # 2 x 8 characters < 77
    assert not bench.score(cut, item)["correct"]


def test_a_folder_reads_only_its_own_files_and_says_which(tmp_path, caplog):
    parquet, _ = mmstar_files(tmp_path)
    (tmp_path / "MMStar.tsv").unlink()
    write_json(tmp_path / "notes.json", [{"question": "unrelated", "answer": "A"}])
    write_tsv(tmp_path / "AI2D_TEST.tsv", [{"index": 1, "question": "q", "A": "x", "B": "y", "answer": "A"}])
    bench = MMStar(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="pebr_lit.eval.benchmarks.layouts"):
        assert [i.qid for i in bench.items()] == ["3"]
    assert bench.files_read == [parquet] and bench.files_left == ["AI2D_TEST.tsv", "notes.json"]
    assert "MMStar: reading mmstar.parquet from" in caplog.text and "not read: AI2D_TEST.tsv, notes.json" in caplog.text
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / "notes.json", [{"question": "unrelated", "answer": "A"}])
    with pytest.raises(RecordError, match=r"other: holds none of mmstar's released files .*; found: notes.json"):
        MMStar(str(other)).items()


def test_another_benchmarks_file_is_refused_with_its_name(tmp_path):
    parquet, tsv = mmstar_files(tmp_path)
    with pytest.raises(RecordError, match=r"MMStar\.tsv: this is mmstar's released file, not ai2d's"):
        AI2D(str(tsv)).items()
    with pytest.raises(RecordError, match=r"mmstar\.parquet: this is mmstar's released file, not hallusionbench's"):
        HallusionBench(str(parquet)).items()
    # a renamed HallusionBench TSV (no option columns) given to MMStar: refused at its first row
    renamed = write_tsv(
        tmp_path / "mine.tsv",
        [{"index": "a_b_c_0_0_0", "question": "Is it?", "answer": "Yes", "category": "VD", "image": b64_image()}],
    )
    with pytest.raises(RecordError, match=r"mine\.tsv:row 1: field 'A-Z': no options in A-Z columns"):
        MMStar(str(renamed)).items()


def test_mmstar_aggregate_counts_cut_off_rows_in_run(tmp_path):
    (item,) = MMStar(str(mmstar_files(tmp_path)[0])).items()
    rows, agg = run(MMStar(str(mmstar_files(tmp_path)[0])), {item.qid: LONG})
    assert agg["metrics"]["accuracy"] == 0.0 and rows[0]["choice"] is None
