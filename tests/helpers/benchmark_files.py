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
