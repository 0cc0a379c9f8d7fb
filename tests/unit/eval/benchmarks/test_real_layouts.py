"""Benchmark adapters on the quirks of the real released files (fixtures written here, in each file's schema).

Each test names the real file whose quirk it reproduces; the rows are invented.
"""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import (
    DynaMath,
    HallusionBench,
    LogicVista,
    MathVision,
    MathVista,
    WeMath,
)
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, inline_options
from pebr_lit.eval.benchmarks.wemath import split_options
from pebr_lit.format.response import IMAGE_SLOT as S
from pebr_lit.format.response import build_messages
from tests.helpers.benchmark_files import hallusion_row, write_json, write_png

ANSWER = "### The final answer is: "


def run(bench, responses: dict[str, str]) -> dict:
    items = {i.qid: i for i in bench.items()}
    return bench.aggregate(
        [{"qid": q, **bench.score(r, items[q]), "meta": items[q].meta} for q, r in responses.items()]
    )


# ---------------------------------------------------------------------------------------- HallusionBench
def test_hallusionbench_easy_and_hard_follow_visual_input_not_figure_id(tmp_path):
    """HallusionBench.json: VS image questions start at figure 1, and some VS figure-1 rows are edited
    (visual_input 2)."""
    rows = [
        hallusion_row("VS", "table", "3", "1", "0", "1"),  # original
        hallusion_row("VS", "table", "3", "1", "1", "0", visual_input="2"),  # edited although figure 1
        hallusion_row("VS", "table", "3", "0", "0", "1"),
    ]  # text-only (figure 0)
    for r in rows:
        r["image"], r["filename"] = None, (f"./VS/table/3_{r['figure_id']}.png" if r["visual_input"] != "0" else None)
    write_png(tmp_path / "hallusion_bench" / "VS" / "table" / "3_1.png")
    bench = HallusionBench(
        str(write_json(tmp_path / "HallusionBench.json", rows)), image_root=str(tmp_path / "hallusion_bench")
    )
    # q0 on the original figure right, q1 on the edited one wrong: easy 1/1, hard 0/1
    # (figure_id alone would call both easy)
    m = run(bench, {"VS_table_3_1_0": ANSWER + "yes", "VS_table_3_1_1": ANSWER + "yes"})["metrics"]
    assert (m["easy_qAcc"], m["hard_qAcc"], m["n"], m["skipped_text_only"]) == (1.0, 0.0, 2, 1)


# -------------------------------------------------------------------------------------------- LogicVista
def test_logicvista_real_fields_stub_entry_and_glued_options(tmp_path):
    """data/dataset.json: broad/specific capability lists, one empty stub entry, "(A)" glued to the question."""
    for n in (0, 1):
        write_png(tmp_path / "images" / f"v1_{n}.png")
    entry = {"reasoning": "", "imagesource": "s", "sourcelink": "l", "liscenced": "true"}
    write_json(
        tmp_path / "dataset.json",
        {
            "v1_0": {
                "imagename": "v1_0.png",
                "question": "Which is stable?(A) A, (B) B, (C) Impossible to tell",
                "answer": "C",
                "skill": ["mechanical"],
                "broad_capability": ["diagram"],
                "specific_capability": ["physics"],
                **entry,
            },
            "v1_1": {
                "imagename": "v1_1.png",
                "question": "",
                "answer": "",
                "skill": ["spatial"],
                "broad_capability": ["diagram"],
                "specific_capability": ["3d pattern"],
                **entry,
            },
        },
    )
    bench = LogicVista(str(tmp_path))  # the folder holding dataset.json
    (item,) = bench.items()
    assert (item.qid, item.options) == ("v1_0", ("A", "B", "Impossible to tell"))
    assert bench.score(ANSWER + "Impossible to tell", item)["correct"]
    agg = run(bench, {"v1_0": ANSWER + "C"})
    assert agg["metrics"]["skipped_empty"] == 1 and agg["breakdown"]["specific_capability"] == {
        "physics": {"accuracy": 1.0, "n": 1}
    }
    write_json(
        tmp_path / "dataset.json", {"v1_2": {"imagename": "v1_0.png", "question": "Which?", "answer": "", **entry}}
    )
    with pytest.raises(RecordError, match="v1_2: field 'answer': empty value"):
        LogicVista(str(tmp_path)).items()


# ------------------------------------------------------------------------------------------------ WeMath
@pytest.mark.parametrize(
    ("raw", "labels"),
    [
        ("A. 3 cm;B. 4 cm;C. 5 cm; D. No correct answer", "ABCD"),  # ";" with and without a space
        ("A. 20° B. 30° ;C. 40°; D. No correct answer", "ABCD"),  # a space alone separates A and B
        ("A. ①;B．②;C. ③; D. No correct answer", "ABCD"),  # a full-width point
        ("A. ①; ②;B. ③; ④; C. No correct answer", "ABC"),  # ";" inside an option's text
        ("A. Yes, turn it around point ;P.;B. No.; F. No correct answer", "ABF"),  # a stray ";P." and a skipped label
    ],
)
def test_wemath_option_cells_as_typed_in_testmini(raw, labels):
    options = split_options(raw)
    assert "".join(options) == labels and all(
        o and not o.startswith(";") and not o.endswith(";") for o in options.values()
    )


def test_wemath_relabels_skipped_labels_and_cleans_stray_fragments(tmp_path):
    write_png(tmp_path / "2steps" / "image" / "7-1.png")
    row = {
        "ID": "2steps_7",
        "split": "testmini",
        "knowledge concept": "Rotation",
        "question": "Can A turn onto B?",
        "option": "A. Yes, around point ;P.;B. Yes, around side Q;R.; C. No.; F. No correct answer",
        "answer": "F",
        "image_path": "2steps/image/7-1.png",
        "key": "2steps_1",
        "question number": 1,
        "knowledge concept description": "d",
    }
    (item,) = WeMath(str(write_json(tmp_path / "testmini.json", [row]))).items()
    assert item.options == ("Yes, around point P.", "Yes, around side QR.", "No.", "No correct answer")
    assert item.answer == "D" and item.problem.endswith("\nD. No correct answer")  # F relabelled D with its option
    assert (
        WeMath("x").score(ANSWER + "D", item)["correct"]
        and WeMath("x").score(ANSWER + "No correct answer", item)["correct"]
    )
    write_json(tmp_path / "testmini.json", [{**row, "answer": "E"}])
    with pytest.raises(
        RecordError, match=r"row 1: field 'answer': answer 'E' is not one of the option labels \['A', 'B', 'C', 'F'\]"
    ):
        WeMath(str(tmp_path / "testmini.json")).items()


# -------------------------------------------------------------------------------------------- MathVision
def test_mathvision_image_at_image1_and_letter_only_options(tmp_path):
    """MATH-V data/test.jsonl: images/<id>.jpg from the folder above data/, several placeholders, options "A".."E"."""
    for n in (1, 2):
        write_png(tmp_path / "images" / f"{n}.jpg")
    rows = [
        {
            "id": "1",
            "question": "One part is\n<image1>\nWhich is the other?\n<image2>",
            "options": list("ABCDE"),
            "answer": "E",
            "solution": None,
            "level": 1,
            "subject": "combinatorial geometry",
            "image": "images/1.jpg",
        },
        {
            "id": "2",
            "question": "How many dots are there?",
            "options": [],
            "answer": "12",
            "solution": None,
            "level": 2,
            "subject": "counting",
            "image": "images/2.jpg",
        },
    ]
    placed, plain = MathVision(str(write_json(tmp_path / "data" / "test.jsonl", rows, lines=True))).items()
    assert placed.images == (str(tmp_path / "images" / "1.jpg"),)  # no image_root: MATH-V's repository root
    assert (
        placed.problem == f"One part is\n{S}\nWhich is the other?\n<image2>"
    )  # no "(A) A" lines: the options are drawn
    content = build_messages(placed.problem, 1, instruction="")[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "text"] and content[0]["text"] == "One part is\n"
    assert plain.problem == "How many dots are there?"
    assert [c["type"] for c in build_messages(plain.problem, 1, instruction="")[0]["content"]] == ["image", "text"]
    assert (
        MathVision("x").score(ANSWER + "(E)", placed)["correct"] and placed.kind == CHOICE and plain.kind == FREE_FORM
    )


# --------------------------------------------------------------------------------------------- MathVista
def test_mathvista_repository_json_keyed_by_pid_with_query_json(tmp_path):
    """data/testmini.json is an object keyed by pid without ``query``; data/query.json holds the prompts."""
    write_png(tmp_path / "images" / "5.jpg")
    meta = {
        "split": "testmini",
        "language": "english",
        "source": "fixture",
        "category": "math-targeted-vqa",
        "task": "figure question answering",
        "context": "bar chart",
        "grade": "daily life",
        "skills": ["statistical reasoning"],
    }
    data = {
        "5": {
            "question": "Which bar is tallest?",
            "image": "images/5.jpg",
            "choices": ["red", "blue"],
            "unit": None,
            "precision": None,
            "answer": "blue",
            "question_type": "multi_choice",
            "answer_type": "text",
            "pid": "5",
            "metadata": meta,
        }
    }
    path = write_json(tmp_path / "testmini.json", data)
    with pytest.raises(RecordError, match="testmini.json:5: field 'query': missing column 'query'"):
        MathVista(str(path)).items()
    write_json(
        tmp_path / "query.json", {"5": "Hint: pick one.\nQuestion: Which bar is tallest?\nChoices:\n(A) red\n(B) blue"}
    )
    (item,) = MathVista(str(path)).items()
    assert (item.qid, item.answer, item.problem.count("(B) blue")) == ("5", "B", 1)
    assert (
        item.images == (str(tmp_path / "images" / "5.jpg"),) and MathVista("x").score(ANSWER + "blue", item)["correct"]
    )


# ---------------------------------------------------------------------------------------------- DynaMath
def test_dynamath_seed_json_and_choices_glued_to_a_colon(tmp_path):
    """dataset/dataset.json: keyed by id, ``answer``/``level`` fields, "choice:(A) ..." with no space."""
    write_png(tmp_path / "image" / "image3.png")
    data = {
        "3": {
            "question": "Is the curve rising? choice:(A) Yes (B) No",
            "answer": "A",
            "image": "image/image3.png",
            "answer_type": "multiple choice",
            "subject": "analytic geometry",
            "level": "high school",
        }
    }
    (item,) = DynaMath(str(write_json(tmp_path / "dataset.json", data))).items()
    assert (item.qid, item.options, item.answer, item.meta["knowledge_level"]) == (
        "3_v1",
        ("Yes", "No"),
        "A",
        "high school",
    )
    assert DynaMath("x").score(ANSWER + "(A) Yes", item)["correct"]
    # Both scorers read letters only: VLMEvalKit finds the one letter of A-E in "YES" (E), DynaMath's own rule
    # finds no "A" in its first 3 characters.
    assert not any(DynaMath("x", scoring=m).score(ANSWER + "Yes", item)["correct"] for m in ("vlmevalkit", "official"))


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("Which? choice:(A) 2 (B) 1 (C) 0", ("2", "1", "0")),
        ("Pick one. Select from A, B.(A) up (B) down", ("up", "down")),
        ("Ratio 3:(4) is given. How many?", ()),  # a parenthesis after a colon that starts no option run
    ],
)
def test_inline_options_with_the_first_label_glued_to_the_text(text, options):
    assert inline_options(text) == options
