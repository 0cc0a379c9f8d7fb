"""Write benchmark fixture files in the released layouts: parquet with HF Image structs, VLMEvalKit TSV, JSON."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image


def png(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (56, 56)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def hf_image(color: tuple[int, int, int] = (200, 30, 30), name: str = "img.png") -> dict[str, Any]:
    """A cell of Hugging Face's ``Image`` feature as parquet stores it."""
    return {"bytes": png(color), "path": name}


def b64_image(color: tuple[int, int, int] = (30, 200, 30)) -> str:
    """A VLMEvalKit TSV image cell (base64, no data-URL prefix)."""
    return base64.b64encode(png(color)).decode("ascii")


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_tsv(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def write_json(path: Path, data: Any, lines: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in data) if lines else json.dumps(data)
    path.write_text(text, encoding="utf-8")
    return path


def write_png(path: Path, color: tuple[int, int, int] = (30, 30, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(color))
    return path


def mathvista_row(
    pid: str,
    question_type: str,
    answer: str,
    choices: list[str] | None = None,
    answer_type: str = "text",
    precision: float | None = None,
    skills: tuple[str, ...] = ("arithmetic reasoning",),
    task: str = "figure question answering",
) -> dict[str, Any]:
    """One AI4Math/MathVista testmini row (dataset card's ``dataset_info``)."""
    query = f"Hint: Please answer the question.\nQuestion: question {pid}?"
    if choices:
        query += "\nChoices:\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return {
        "pid": pid,
        "question": f"question {pid}?",
        "image": f"images/{pid}.jpg",
        "decoded_image": hf_image(name=f"{pid}.jpg"),
        "choices": choices,
        "unit": None,
        "precision": precision,
        "answer": answer,
        "question_type": question_type,
        "answer_type": answer_type,
        "metadata": {
            "category": "math-targeted-vqa",
            "context": "synthetic scene",
            "grade": "elementary school",
            "img_height": 56,
            "img_width": 56,
            "language": "english",
            "skills": list(skills),
            "source": "fixture",
            "split": "testmini",
            "task": task,
        },
        "query": query,
    }


def hallusion_row(
    category: str,
    subcategory: str,
    set_id: str,
    figure_id: str,
    question_id: str,
    gt: str,
    visual_input: str | None = None,
) -> dict[str, Any]:
    """One HallusionBench row (the official JSON's fields; lmms-lab's parquet adds ``image``).

    ``visual_input`` defaults as the official file mostly pairs it with figure_id: VD figure 0 is the
    original ("1"), later VD figures are edited ("2"); VS figure 0 has no image ("0"), 1 is original."""
    if visual_input is None:
        original = "0" if category == "VD" else "1"
        visual_input = "0" if (category, figure_id) == ("VS", "0") else "1" if figure_id == original else "2"
    return {
        "category": category,
        "subcategory": subcategory,
        "visual_input": visual_input,
        "set_id": set_id,
        "figure_id": figure_id,
        "sample_note": "fixture",
        "question_id": question_id,
        "question": f"Is statement {question_id} true for this figure?",
        "gt_answer_details": "details",
        "gt_answer": gt,
        "filename": f"{category}/{subcategory}/{set_id}_{figure_id}.png",
        "image": hf_image(name=f"{set_id}_{figure_id}.png"),
    }


def write_neighbours(folder: Path) -> list[str]:
    """Files that sit beside a benchmark's own in a folder and must not be read: an unrelated JSON and another
    benchmark's (MMStar's) VLMEvalKit TSV. Returns their names, sorted."""
    write_json(folder / "notes.json", [{"question": "unrelated", "answer": "A"}])
    row = {"index": 9, "question": "Which?", "A": "x", "B": "y", "answer": "A", "category": "c", "image": b64_image()}
    write_tsv(folder / "MMStar.tsv", [row])
    return ["MMStar.tsv", "notes.json"]


def mathvision_row(qid: str, options: list[str], answer: str, image: Any = None) -> dict[str, Any]:
    """One MATH-V ``data/<split>.jsonl`` row (the repository's fields); ``image`` defaults to its path."""
    return {
        "id": qid,
        "question": f"<image1>Question {qid}?",
        "options": options,
        "answer": answer,
        "solution": None,
        "level": 2,
        "subject": "metric geometry - angle",
        "image": image or f"images/{qid}.jpg",
    }


def mathverse_row(index: str, qtype: str, answer: str, image: Any = None) -> dict[str, Any]:
    """One AI4Math/MathVerse testmini row (dataset card's fields); ``image`` defaults to an HF image struct."""
    choices = "\nChoices:\nA:30°\nB:40°\nC:50°\nD:60°" if qtype == "multi-choice" else ""
    return {
        "sample_index": index,
        "problem_index": "1",
        "problem_version": "Text Lite",
        "question": "What is angle ABC?",
        "image": hf_image() if image is None else image,
        "answer": answer,
        "question_type": qtype,
        "metadata": {"split": "testmini", "source": "GeoQA", "subject": "plane geometry", "subfield": "angle"},
        "query_wo": f"Please directly answer. Question: What is angle ABC?{choices}",
        "query_cot": f"Please first conduct reasoning. Question: What is angle ABC?{choices}",
        "question_for_eval": f"What is angle ABC?{choices}",
    }


def wemath_row(pid: str, key: str, answer: str = "B", image: Any = "testmini/a.png") -> dict[str, Any]:
    """One We-Math ``data/testmini.json`` row (the repository's fields)."""
    return {
        "ID": pid,
        "split": "testmini",
        "knowledge concept": "angles",
        "question": "What is x?",
        "option": "A. 9cm; B. 12cm; C. 15cm; D. 18cm; E. No correct answer",
        "answer": answer,
        "image_path": image,
        "key": key,
        "question number": 1,
        "knowledge concept description": "d",
    }


def mmmu_row(qid: str, options: str = "['1', '2']", answer: str = "A", image: Any = None) -> dict[str, Any]:
    """One MMMU/MMMU ``<Subject>/validation-*.parquet`` row (dataset card's fields), one image."""
    row = {
        "id": qid,
        "question": "<image 1> What is shown?",
        "options": options,
        "explanation": "",
        "img_type": "['Diagrams']",
        "answer": answer,
        "topic_difficulty": "Easy",
        "question_type": "multiple-choice" if options != "[]" else "open",
        "subfield": "x",
    }
    row.update({f"image_{k}": (image or hf_image()) if k == 1 else None for k in range(1, 8)})
    return row


def dynamath_row(seed: str, truth: str = "3.142", answer_type: str = "float") -> dict[str, Any]:
    """One DynaMath_Sample ``sample_variant<k>`` row (dataset card's fields)."""
    return {
        "id": seed,
        "question": f"Q{seed}? Choices: (A) 1 (B) 2" if answer_type == "multiple choice" else f"Q{seed}?",
        "image": f"{seed}.png",
        "decoded_image": hf_image(),
        "ground_truth": truth,
        "answer_type": answer_type,
        "subject": "algebra",
        "knowledge_level": "high school",
    }
