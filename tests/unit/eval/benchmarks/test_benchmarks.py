"""Benchmark adapters: fixtures in each released layout load, tricky answers grade right, aggregates match
hand counts."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import (
    AI2D,
    MMMU,
    DynaMath,
    HallusionBench,
    LogicVista,
    MathVerse,
    MathVision,
    MathVista,
    MMStar,
    WeMath,
)
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, YES_NO, BenchmarkItem
from pebr_lit.eval.benchmarks.wemath import four_dimensional
from pebr_lit.eval.results import (
    benchmark_markdown,
    fmt,
    summary_markdown,
    write_results,
)
from pebr_lit.format.response import IMAGE_SLOT as S
from pebr_lit.format.response import build_messages
from tests.helpers.benchmark_files import (
    b64_image,
    hallusion_row,
    hf_image,
    mathvista_row,
    write_json,
    write_parquet,
    write_png,
    write_tsv,
)

ANSWER = (
    "### Image Description: a figure.\n### Rationales: r.\n### Let's think step by step.\n### Step 1: s.\n"
    "### The final answer is: "
)


def run(bench, responses: dict[str, str]) -> tuple[list[dict], dict]:
    """Score ``responses`` (qid -> response text) for every item and aggregate, as EvalModule does."""
    items = {i.qid: i for i in bench.items()}
    rows = [{"qid": q, **bench.score(text, items[q]), "meta": items[q].meta} for q, text in responses.items()]
    return rows, bench.aggregate(rows)


# --------------------------------------------------------------------------------------------- MathVista
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
    assert bench.score(ANSWER + "1.46", flt)["correct"]  # rounds to 1 decimal: 1.5
    assert not bench.score(ANSWER + "1.4", flt)["correct"]
    assert bench.score("no heading at all, the answer is 1.5", flt)["correct"]  # fallback: whole response

    # 1 and 3 right, 2 wrong: accuracy 2/3; skills count item 1 under both of its skills.
    rows, agg = run(bench, {"1": ANSWER + "B", "2": ANSWER + "7", "3": ANSWER + "[2007, 2008]"})
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


def test_duplicate_ids_and_limit(tmp_path):
    rows = [
        mathvista_row("1", "free_form", "2"),
        mathvista_row("2", "free_form", "3"),
        mathvista_row("1", "free_form", "4"),
    ]
    path = str(write_parquet(tmp_path / "m.parquet", rows))
    with pytest.raises(RecordError, match="duplicate question id '1'"):
        MathVista(path).items()
    assert [i.qid for i in MathVista(str(write_parquet(tmp_path / "n.parquet", rows[:2])), limit=1).items()] == ["1"]


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
    assert bench.score(ANSWER + "1.254", flt)["correct"] and not bench.score(ANSWER + "1.26", flt)["correct"]


# --------------------------------------------------------------------------------------------- MathVerse
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


# -------------------------------------------------------------------------------------------- MathVision
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


# -------------------------------------------------------------------------------------------------- MMMU
def mmmu_row(qid: str, qtype: str, options: str, answer: str, images: int = 1, difficulty: str = "Easy") -> dict:
    row = {
        "id": qid,
        "question": "<image 1> What is shown?",
        "options": options,
        "explanation": "",
        "img_type": "['Diagrams']",
        "answer": answer,
        "topic_difficulty": difficulty,
        "question_type": qtype,
        "subfield": "x",
    }
    row.update({f"image_{k}": hf_image() if k <= images else None for k in range(1, 8)})
    return row


def test_mmmu_subject_folders_multi_image_and_open_answers(tmp_path):
    write_parquet(
        tmp_path / "Art_Theory" / "validation-00000-of-00001.parquet",
        [mmmu_row("validation_Art_Theory_1", "multiple-choice", "['Baroque', 'Rococo', 'Gothic']", "B", images=2)],
    )
    write_parquet(
        tmp_path / "Math" / "validation-00000-of-00001.parquet",
        [
            mmmu_row("validation_Math_1", "open", "[]", "['24', '24.0']", difficulty="Hard"),
            mmmu_row("validation_Math_2", "open", "[]", "7"),
        ],
    )
    write_parquet(
        tmp_path / "Math" / "dev-00000-of-00001.parquet", [mmmu_row("dev_Math_1", "open", "[]", "1")]
    )  # other split
    bench = MMMU(str(tmp_path))
    art, m1, m2 = bench.items()
    assert [i.qid for i in (art, m1, m2)] == ["validation_Art_Theory_1", "validation_Math_1", "validation_Math_2"]
    assert len(art.images) == 2 and art.meta["subject"] == "Art_Theory" and art.meta["discipline"] == "Art and Design"
    # image_2 is named nowhere: it keeps a slot before the question; image_1 sits where "<image 1>" was.
    assert art.problem == (
        f"{S}Question: {S} What is shown?\nOptions:\nA. Baroque\nB. Rococo\nC. Gothic\n"
        "Please select the correct answer from the options above."
    )
    assert bench.score(ANSWER + "Rococo", art)["correct"]
    assert bench.score(ANSWER + "24", m1)["correct"]  # any entry of a list answer
    _, agg = run(bench, {art.qid: ANSWER + "B", m1.qid: ANSWER + "25", m2.qid: ANSWER + "7"})
    assert agg["breakdown"]["discipline"] == {
        "Art and Design": {"accuracy": 1.0, "n": 1},
        "Science": {"accuracy": 0.5, "n": 2},
    }
    assert agg["breakdown"]["topic_difficulty"]["Hard"] == {"accuracy": 0.0, "n": 1}


def test_mmmu_images_interleave_where_question_and_options_name_them(tmp_path):
    row = mmmu_row("validation_Design_3", "multiple-choice", "['<image 3>', '<image 2>']", "B", images=3)
    row.update(
        question="Compare <image 1> with the options.",
        image_1=hf_image((255, 0, 0)),
        image_2=hf_image((0, 255, 0)),
        image_3=hf_image((0, 0, 255)),
    )
    (item,) = MMMU(str(write_parquet(tmp_path / "validation-0.parquet", [row]))).items()
    assert item.problem == (
        f"Question: Compare {S} with the options.\nOptions:\nA. {S}\nB. {S}\n"
        "Please select the correct answer from the options above."
    )
    # images in slot order: 1 (question), 3 (option A), 2 (option B)
    assert [im.getpixel((0, 0)) for im in item.load_images()] == [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    content = build_messages(item.problem, len(item.images))[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "text", "image", "text", "image", "text"]
    assert content[2]["text"] == " with the options.\nOptions:\nA. "
    assert MMMU("x").score(ANSWER + "B", item)["correct"]  # the options' "<image k>" texts stay for matching
    no_refs = {**row, "question": "Which is larger?", "options": "['a', 'b']"}
    (plain,) = MMMU(str(write_parquet(tmp_path / "validation-1.parquet", [no_refs]))).items()
    assert S not in plain.problem and len(plain.images) == 3  # nothing named: images first, in column order
    bad = {**row, "question": "Compare <image 4>."}
    with pytest.raises(
        RecordError, match=r"row 1: field 'question': the prompt names <image 4> but the row has images \[1, 2, 3\]"
    ):
        MMMU(str(write_parquet(tmp_path / "validation-2.parquet", [bad]))).items()


def test_mmmu_vlmevalkit_tsv_split_open_questions_and_shared_images(tmp_path):
    big = b64_image((10, 20, 30))
    tsv = write_tsv(
        tmp_path / "MMMU_DEV_VAL.tsv",
        [
            {
                "index": 1,
                "id": "dev_Math_1",
                "question": "<image 1> x?",
                "A": "1",
                "B": "2",
                "answer": "A",
                "split": "dev",
                "image": big,
            },
            {
                "index": 2,
                "id": "validation_Math_1",
                "question": "<image 1> and <image 2>: which?",
                "A": "left",
                "B": "right",
                "answer": "B",
                "split": "validation",
                "image": str([b64_image((1, 2, 3)), b64_image((4, 5, 6))]),
            },
            {
                "index": 3,
                "id": "validation_Physics_2",
                "question": "Speed in <image 1>?",
                "A": "",
                "B": "",
                "answer": "12",
                "split": "validation",
                "image": "1",
            },  # the image of row index 1, stored once
        ],
    )
    bench = MMMU(str(tsv))
    mc, open_q = bench.items()  # the dev row is skipped
    assert (mc.qid, mc.kind, mc.options, mc.meta["subject"]) == ("validation_Math_1", CHOICE, ("left", "right"), "Math")
    assert mc.problem.startswith(f"Question: {S} and {S}: which?\nOptions:\nA. left\nB. right")
    assert [im.getpixel((0, 0)) for im in mc.load_images()] == [(1, 2, 3), (4, 5, 6)]
    assert (open_q.kind, open_q.problem, open_q.meta["question_type"]) == (
        FREE_FORM,
        f"Question: Speed in {S}?",
        "open",
    )
    assert open_q.load_images()[0].getpixel((0, 0)) == (10, 20, 30)
    assert bench.score(ANSWER + "12 m/s", open_q)["correct"] and bench.score(ANSWER + "(B) right", mc)["correct"]
    assert [i.qid for i in MMMU(str(tsv), split="dev").items()] == ["dev_Math_1"]


def test_mmmu_missing_images_and_options(tmp_path):
    path = write_parquet(
        tmp_path / "validation-0.parquet", [mmmu_row("validation_Art_1", "multiple-choice", "[]", "A")]
    )
    with pytest.raises(RecordError, match="field 'options': multiple-choice question without options"):
        MMMU(str(path)).items()
    path = write_parquet(tmp_path / "validation-1.parquet", [mmmu_row("validation_Art_1", "open", "[]", "A", images=0)])
    with pytest.raises(RecordError, match="field 'image_1': no image"):
        MMMU(str(path)).items()


# ------------------------------------------------------------------------------------------------ MMStar
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
    assert a.problem == MMSTAR_Q and a.options == ("a red square", "a blue circle", "a green cat", "nothing")
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


def test_tsv_bad_base64_names_the_column(tmp_path):
    tsv = write_tsv(
        tmp_path / "MMStar.tsv",
        [{"index": 1, "question": "Q", "A": "x", "B": "y", "answer": "A", "image": "not base64!"}],
    )
    with pytest.raises(RecordError, match="field 'image': not base64 image data"):
        MMStar(str(tsv)).items()


# -------------------------------------------------------------------------------------------------- AI2D
def test_ai2d_parquet_index_answers_and_tsv(tmp_path):
    rows = [
        {"question": "Which stage?", "options": ["egg", "larva", "pupa", "adult"], "answer": "2", "image": hf_image()}
    ]
    (item,) = AI2D(str(write_parquet(tmp_path / "test-0.parquet", rows))).items()
    assert (item.qid, item.answer) == ("1", "C")  # 0-based index 2 -> C; no id column: file order
    assert item.problem.startswith("Question: Which stage?\nOptions:\nA. egg\n")
    assert AI2D("x").score(ANSWER + "pupa", item)["correct"]
    with pytest.raises(RecordError, match="answer index 4 outside the 4 options"):
        AI2D(str(write_parquet(tmp_path / "bad.parquet", [{**rows[0], "answer": "4"}]))).items()
    tsv = write_tsv(
        tmp_path / "AI2D_TEST.tsv",
        [
            {
                "index": 5,
                "question": "Q?",
                "A": "x",
                "B": "y",
                "C": "z",
                "D": "w",
                "answer": "D",
                "category": "life cycles",
                "image": b64_image(),
            }
        ],
    )
    (t,) = AI2D(str(tsv)).items()
    assert (t.qid, t.answer, t.meta["category"]) == ("5", "D", "life cycles")


# ---------------------------------------------------------------------------------------- HallusionBench
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


# ------------------------------------------------------------------------------------------------ WeMath
def test_wemath_four_dimensional_metric_by_hand():
    def row(pid, key, ok):
        return {"correct": ok, "meta": {"problem_id": pid, "key": key}}

    rows = [
        row("P1", "2steps_1", True),
        row("P1", "2steps_2", True),
        row("P1", "2steps_multi", False),  # IG
        row("P2", "3steps_1", False),
        row("P2", "3steps_2", True),
        row("P2", "3steps_3", True),
        row("P2", "3steps_multi", True),  # RM strict, CM loose
        row("P3", "2steps_1", True),
    ]  # incomplete: left out
    m = four_dimensional(rows)
    assert (m["problems"], m["IG"], m["IK"], m["CM_strict"], m["CM_loose"], m["RM_strict"], m["RM_loose"]) == (
        2,
        1,
        0,
        0,
        1,
        1,
        0,
    )
    assert m["score_strict"] == pytest.approx((2 - 0.5 * 1 - 1 - 0) / 2)  # 0.25
    assert m["score_loose"] == pytest.approx((2 - 0.5 * 1 - 0 - 0) / 2)  # 0.75
    assert (m["RM_strict_rate"], m["RM_loose_rate"], m["IG_rate"]) == (1.0, 0.0, 0.5)


def test_wemath_json_layout(tmp_path):
    write_png(tmp_path / "testmini" / "a.png")
    path = write_json(
        tmp_path / "testmini.json",
        [
            {
                "ID": "P1",
                "split": "testmini",
                "knowledge concept": "angles",
                "question": "What is x?",
                "option": "A. 9cm; B. 12cm; C. 15cm; D. 18cm; E. No correct answer",
                "answer": "B",
                "image_path": "testmini/a.png",
                "key": "2steps_1",
                "question number": 1,
                "knowledge concept description": "d",
            }
        ],
    )
    (item,) = WeMath(str(path)).items()
    assert item.qid == "P1_2steps_1" and item.options[-1] == "No correct answer"
    assert item.problem == "Question: What is x?\nOptions:\nA. 9cm\nB. 12cm\nC. 15cm\nD. 18cm\nE. No correct answer"
    assert WeMath(str(path)).score(ANSWER + "12cm", item)["correct"]


# -------------------------------------------------------------------------------------------- LogicVista
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


# ---------------------------------------------------------------------------------------------- DynaMath
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


# ------------------------------------------------------------------------------- scoring edge cases
CM = BenchmarkItem("q", "p", "B", (), kind=CHOICE, options=("12 cm", "15 cm", "18 cm", "20 cm"))


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("(B)", True),
        ("B.", True),
        ("b.", True),
        ("The answer is B", True),
        ("Option (B)", True),
        ("I would choose B", True),
        ("\\boxed{\\text{B}}", True),
        ("$\\boxed{B}$", True),
        ("**B**", True),
        ("15 cm", True),
        ("15cm", True),
        ("B: 15cm", True),  # option text, spaces normalised
        ("15", True),  # math-equal to exactly one option's text ("15 cm")
        ("B. 18 cm", True),  # letter and contradicting text: the letter counts, as in VLMEvalKit
        ("(C) 18 cm", False),
        ("B and C", False),
        ("(A) is wrong, (B) is right", False),  # two letters named: no answer
    ],
)
def test_choice_scoring_by_hand(answer, correct):
    assert MMStar("x").score(ANSWER + answer, CM)["correct"] is correct


def test_choice_scoring_without_the_answer_heading():
    scored = MMStar("x").score("The ruler shows 15 cm, so the answer is B.", CM)
    assert (scored["choice"], scored["correct"]) == ("B", True)


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("[2007, 2008]", True),
        ("[2007,2008]", True),
        ("2007, 2008", True),
        ("(2007, 2008)", True),
        ("2008, 2007", False),
        ("2007", False),
        ("[2007, 2008, 2009]", False),
    ],
)
def test_mathvista_list_answers_with_or_without_brackets(answer, correct):
    item = BenchmarkItem("l", "p", "[2007, 2008]", (), kind=FREE_FORM, meta={"answer_type": "list"})
    assert MathVista("x").score(ANSWER + answer, item)["correct"] is correct


@pytest.mark.parametrize(
    ("answer", "truth", "correct"),
    [
        ("1/2", "0.5", True),
        ("\\dfrac{1}{2}", "0.5", True),
        ("0.5", "1/2", True),
        ("2/4", "1/2", True),
        ("5 cm", "5", True),
        ("5", "5 cm", True),
        ("6 square units", "6", True),
        ("12 m^2", "12", True),
        ("\\boxed{\\frac{3}{4}}", "0.75", True),
        ("The answer is 7 m/s.", "7", True),
        ("17", "7", False),
        ("-5", "5", False),
        ("0.333", "1/3", False),  # exact unless a precision or tolerance says so
    ],
)
def test_open_answer_scoring_by_hand(answer, truth, correct):
    item = BenchmarkItem("o", "p", truth, (), kind=FREE_FORM)
    assert MMMU("x").score(ANSWER + answer, item)["correct"] is correct


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("Yes", True),
        ("yes.", True),
        ("**YES**", True),
        ("Yes, the bar for 2019 is taller.", True),
        ("The answer is yes", True),
        ("No, it says yes", False),
        ("Nope", False),
        ("I cannot tell", False),
    ],
)
def test_yes_no_scoring_by_hand(answer, correct):
    item = BenchmarkItem("h", "p", "yes", (), kind=YES_NO)
    assert HallusionBench("x").score(ANSWER + answer, item)["correct"] is correct


# ----------------------------------------------------------------------------------------------- results
def test_result_files_and_markdown(tmp_path):
    result = {
        "metrics": {"accuracy": 0.5, "n": 2},
        "breakdown": {"task": {"geo": {"accuracy": 1.0, "n": 1}}},
        "headline": ["accuracy"],
    }
    hall = {
        "metrics": {"accuracy": 0.25, "qAcc": 0.125, "fAcc": None, "n": 4},
        "breakdown": {},
        "headline": ["qAcc", "fAcc", "aAcc"],
    }
    assert fmt(0.125) == "12.5" and fmt(3) == "3" and fmt(None) == "-"
    assert "| geo | 100.0 | 1 |" in benchmark_markdown("mathvista", result)
    summary = summary_markdown({"mathvista": result, "hallusionbench": hall})
    assert (
        "| mathvista | 2 | 50.0 | - |" in summary
        and "| hallusionbench | 4 | 25.0 | qAcc 12.5, fAcc -, aAcc - |" in summary
    )
    assert "| mean over benchmarks | - | 37.5 | - |" in summary  # (0.5 + 0.25) / 2
    rows = {"mathvista": [{"qid": "1", "correct": True}, {"qid": "2", "correct": False}], "hallusionbench": []}
    path = write_results(tmp_path / "out", {"mathvista": result, "hallusionbench": hall}, rows, {"sampling": {}})
    assert path.read_text().startswith("# Evaluation results")
    assert len((tmp_path / "out" / "mathvista.jsonl").read_text().splitlines()) == 2
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "results.json",
        "mathvista.json",
        "mathvista.md",
        "hallusionbench.jsonl",
    }


def test_summary_puts_reference_scores_beside_the_run():
    result = {"metrics": {"accuracy": 0.5, "n": 2}, "headline": ["accuracy"]}
    hall = {"metrics": {"accuracy": 0.25, "qAcc": 0.125, "n": 4}, "headline": ["qAcc", "aAcc"]}
    summary = summary_markdown(
        {"mathvista": result, "hallusionbench": hall},
        {"mathvista": 63.5, "hallusionbench.qAcc": 20.0, "hallusionbench.fAcc": 10.0},
    )
    assert "| mathvista (reference accuracy) | - | 63.5 | this run -13.5 points |" in summary  # 50.0 - 63.5
    assert "| hallusionbench (reference qAcc) | - | - | qAcc 20.0; this run -7.5 points |" in summary  # 12.5 - 20.0
    assert "| hallusionbench (reference fAcc) | - | - | fAcc 10.0; this run - |" in summary  # no fAcc in this run
    lines = summary.splitlines()
    assert lines.index("| mathvista | 2 | 50.0 | - |") + 1 == next(
        i for i, line in enumerate(lines) if "mathvista (reference" in line
    )


def test_item_load_images_names_the_image():
    item = BenchmarkItem("q", "p", "a", (b"not an image",), source="f.parquet:row 3")
    with pytest.raises(RecordError, match=r"f.parquet:row 3: field 'images\[0\]': cannot decode image"):
        item.load_images()
