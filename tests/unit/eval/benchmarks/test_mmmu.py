"""MMMU adapter: subject folders, interleaved images, open answers, VLMEvalKit TSV, missing fields."""

from __future__ import annotations

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import MMMU
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM
from pebr_lit.format.response import IMAGE_SLOT as S
from pebr_lit.format.response import build_messages
from tests.helpers.benchmark_files import b64_image, hf_image, write_parquet, write_tsv
from tests.helpers.benchmark_scoring import ANSWER, run


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
    assert MMMU(str(tmp_path), scoring="official").score(ANSWER + "24", m1)["correct"]  # any entry of a list answer
    # VLMEvalKit's MMMU_preproc: option A is the list string as written, which "24" does not contain.
    assert not bench.score(ANSWER + "24", m1)["correct"]
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
