"""MathVista (testmini): math reasoning in visual contexts; multiple choice by option text, free-form numbers and lists.

Released layout (Hugging Face ``AI4Math/MathVista``, ``data/testmini-*.parquet``; schema from the dataset
card's ``dataset_info``, NOT checked against the real files here — no hub access):
  ``pid`` str; ``question`` str; ``image`` str (relative path "images/<pid>.jpg"); ``decoded_image``
  Image ({"bytes", "path"}); ``choices`` list[str] or null; ``unit`` str; ``precision`` float or null;
  ``answer`` str (for multiple choice the *option text*, not a letter); ``question_type``
  "multi_choice" | "free_form"; ``answer_type`` "text" | "integer" | "float" | "list";
  ``metadata`` struct (``category``, ``context``, ``grade``, ``img_height``, ``img_width``,
  ``language``, ``skills`` list, ``source``, ``split``, ``task``); ``query`` str.
A JSON/JSONL file with the same fields (images as paths under ``image_root``) reads the same way.
The ``test`` split hides its answers, so it is refused with a message.

Prompt: the ``query`` column, MathVista's own prompt (a "Hint:" naming the expected answer form,
the question and, for multiple choice, "Choices:" with "(A) ..." lines).
Scoring (MathVista's rules, without its GPT answer extractor): multiple choice is right when the
answer names the right option by letter or by text; integers compare as integers, floats after
rounding to the item's ``precision`` decimals, lists as lists (``eval.answers.match_free_form``).
Aggregates: accuracy overall and by question type, answer type, task, category, context, grade,
source, language and skill (an item counts under each of its skills), as MathVista reports them.

Left out on purpose: the GPT-based answer extraction of the official scorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, LETTERS, Benchmark, BenchmarkItem, as_list, read_table

META_FIELDS = ("task", "category", "context", "grade", "source", "language", "skills")


class MathVista(Benchmark):
    """MathVista testmini (1,000 questions).

    Args:
        path: ``testmini-*.parquet`` (or a folder holding it, read with ``split``), or JSON/JSONL with the same fields.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split.
    """

    default_name = "mathvista"
    default_split = "testmini"
    layout = ("AI4Math/MathVista's testmini parquet: pid, query, answer, question_type, answer_type, "
              "choices, precision, decoded_image/image, metadata")
    group_by = ("question_type", "answer_type", *META_FIELDS)

    def load(self, path: Path) -> list[BenchmarkItem]:
        root = self.root(path)
        items = []
        for source, row in read_table(path, self.split if path.is_dir() else None):
            pid = str(self.need(row, "pid", source))
            qtype = self.need(row, "question_type", source)
            answer = row.get("answer")
            if answer is None or not str(answer).strip():
                raise RecordError(source, "empty value in column 'answer'",
                                  "MathVista's test split hides its answers; evaluate testmini", "answer")
            answer = str(answer).strip()
            image = row.get("decoded_image") or self.need(row, "image", source)
            meta_in = row.get("metadata") or {}
            meta: dict[str, Any] = {name: meta_in.get(name) for name in META_FIELDS}
            meta["skills"] = [str(s) for s in as_list(meta_in.get("skills"))]
            meta.update(question_type=qtype, answer_type=row.get("answer_type"), unit=row.get("unit") or None)
            options: tuple[str, ...] = ()
            kind = FREE_FORM
            if qtype == "multi_choice":
                options = tuple(str(c) for c in as_list(self.need(row, "choices", source)))
                if answer not in options:
                    raise RecordError(source, f"answer {answer!r} is not one of the choices {list(options)}",
                                      "MathVista multiple-choice answers are option texts; check the file", "answer")
                answer, kind = LETTERS[options.index(answer)], CHOICE
            elif row.get("answer_type") == "float" and row.get("precision") is not None:
                meta["precision"] = int(row["precision"])  # decimals to round to before comparing
            items.append(BenchmarkItem(
                qid=pid, problem=str(self.need(row, "query", source)), answer=answer,
                images=(self.image(image, source, "decoded_image", root),), kind=kind, options=options,
                meta=meta, source=source,
            ))
        return items
