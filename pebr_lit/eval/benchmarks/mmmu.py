"""MMMU (validation): college-level multi-discipline questions with up to 7 images; multiple choice and open answers.

Released layout (Hugging Face ``MMMU/MMMU``: one folder per subject, ``<Subject>/validation-*.parquet``;
``lmms-lab/MMMU`` merges them into ``data/validation-*.parquet``; schema from the dataset cards,
NOT checked against the real files here — no hub access):
  ``id`` str ("validation_<Subject>_<n>"); ``question`` str (with "<image k>" placeholders);
  ``options`` str (a Python-list string, "['a', 'b']"; "[]" for open questions); ``explanation``;
  ``image_1`` .. ``image_7`` Image ({"bytes", "path"}) or null; ``img_type``; ``answer`` str (a
  letter, or the open answer, sometimes a list string); ``topic_difficulty`` "Easy" | "Medium" |
  "Hard"; ``question_type`` "multiple-choice" | "open"; ``subfield`` str.
A folder is searched recursively for ``<split>-*.parquet`` files (both layouts above).

Prompt: VLMEvalKit's multiple-choice prompt (the paper's harness): "Question: ...", then "Options:"
with "A. ..." lines and "Please select the correct answer from the options above."; open questions
get "Question: ..." alone. All images come first; "<image k>" placeholders stay in the text
(VLMEvalKit interleaves the images there instead).
Scoring (MMMU's rules without its random guess for unparseable answers, which count as wrong):
multiple choice by letter or option text; open answers with the math-aware grader against the
answer, or against any entry when the answer is a list.
Aggregates: accuracy overall, by subject, by discipline (MMMU's six groups), by difficulty and by
question type.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.answers import match_free_form
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, Benchmark, BenchmarkItem, as_list, mcq_prompt, read_table
from pebr_lit.format import extract_answer

DISCIPLINES = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
DISCIPLINE_OF = {subject: group for group, subjects in DISCIPLINES.items() for subject in subjects}


class MMMU(Benchmark):
    """MMMU validation (900 questions over 30 subjects).

    Args:
        path: The MMMU/MMMU folder (subject folders), lmms-lab/MMMU's data folder, or one parquet file.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: Which files to read in a folder: "<split>-*.parquet".
    """

    default_name = "mmmu"
    default_split = "validation"
    layout = "MMMU/MMMU's <Subject>/validation-*.parquet: id, question, options, answer, question_type, image_1..image_7, topic_difficulty"
    group_by = ("subject", "discipline", "topic_difficulty", "question_type")

    def files(self, path: Path) -> list[Path]:
        if path.is_file():
            return [path]
        files = sorted(p for p in path.rglob(f"{self.split}-*.parquet") if p.is_file())
        if not files:
            raise RecordError(str(path), f"no {self.split}-*.parquet files below this folder", f"MMMU expects {self.layout}")
        return files

    def load(self, path: Path) -> list[BenchmarkItem]:
        items = []
        for file in self.files(path):
            root = self.root(file)
            for source, row in read_table(file):
                qid = str(self.need(row, "id", source))
                # "validation_Art_Theory_12" -> "Art_Theory"
                subject = re.sub(r"^(dev|validation|test)_|_\d+$", "", qid)
                qtype = self.need(row, "question_type", source)
                options = tuple(str(o) for o in as_list(row.get("options")))
                if qtype == "multiple-choice" and not options:
                    raise RecordError(source, "multiple-choice question without options", f"MMMU expects {self.layout}", "options")
                images = tuple(self.image(row[f"image_{k}"], source, f"image_{k}", root)
                               for k in range(1, 8) if row.get(f"image_{k}") is not None)
                if not images:
                    raise RecordError(source, "no image in image_1..image_7", f"MMMU expects {self.layout}", "image_1")
                question = str(self.need(row, "question", source))
                items.append(BenchmarkItem(
                    qid=qid, problem=mcq_prompt(question, options), answer=str(self.need(row, "answer", source)).strip(),
                    images=images, kind=CHOICE if qtype == "multiple-choice" else FREE_FORM, options=options, source=source,
                    meta={"subject": subject, "discipline": DISCIPLINE_OF.get(subject), "question_type": qtype,
                          "topic_difficulty": row.get("topic_difficulty"), "subfield": row.get("subfield")},
                ))
        return items

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        if item.kind == CHOICE:
            return super().score(response, item)
        text = extract_answer(response)
        golds = [str(g) for g in as_list(item.answer)] if item.answer.startswith("[") else [item.answer]
        return {"prediction": text, "correct": any(match_free_form(text, g) for g in golds)}
