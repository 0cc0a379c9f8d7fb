"""MMMU (validation): college-level multi-discipline questions with up to 7 images; multiple choice and open answers.

Released layouts (schemas from the dataset cards and VLMEvalKit's dataset code, NOT checked against the
real files: they live only on the hub; the ``MMMU-Benchmark/MMMU`` repository holds no question file,
only an answer key, ``eval/answer_dict_val.json``):
  - Hugging Face ``MMMU/MMMU``: one folder per subject, ``<Subject>/validation-*.parquet``;
    ``lmms-lab/MMMU`` merges them into ``data/validation-*.parquet``. Columns: ``id`` str
    ("validation_<Subject>_<n>"); ``question`` str (with "<image k>" references); ``options`` str (a
    Python-list string, "['a', 'b']"; "[]" for open questions; an option may itself be "<image k>");
    ``explanation``; ``image_1`` .. ``image_7`` Image ({"bytes", "path"}) or null; ``img_type``;
    ``answer`` str (a letter, or the open answer, sometimes a list string); ``topic_difficulty``
    "Easy" | "Medium" | "Hard"; ``question_type`` "multiple-choice" | "open"; ``subfield`` str.
    A folder is searched recursively for ``<split>-*.parquet`` files (both layouts above).
  - VLMEvalKit's ``MMMU_DEV_VAL.tsv``: ``index``, ``id`` (as above), ``question``, option columns
    ``A``.. (empty for open questions), ``answer``, ``split`` ("dev" | "validation"; rows of other
    splits are skipped), ``image`` (a list of base64 images, image ``k`` at position ``k``).

Prompt: VLMEvalKit's multiple-choice prompt (the paper's harness): "Question: ...", then "Options:"
with "A. ..." lines and "Please select the correct answer from the options above."; open questions
get "Question: ..." alone. Images are interleaved as VLMEvalKit's MMMU prompt does: each "<image k>"
in the question or an option becomes image ``k`` at that place (``format.IMAGE_SLOT``; an image
named twice is shown twice). Unlike VLMEvalKit, which drops an image no reference names, such an
image is kept, before the question text; a reference to an image the row lacks is an error.
Scoring (``scoring``; the rules are in ``mmmu_rules``): ``vlmevalkit`` (default) grades multiple choice by
VLMEvalKit's exact ``can_infer`` (``eval.vlmevalkit_rules``) and an open question as VLMEvalKit's
``MMMU_preproc`` does: two options, the gold answer text (A) and "Other Answers" (B), truth A, read by
``can_infer`` too.
``official`` follows MMMU's ``parse_multi_choice_response`` and ``parse_open_response`` / ``eval_open``
(numbers and short phrases pulled out of a sentence answer; any entry of a list answer), without the
random guess for an unparseable multiple-choice answer, which counts as wrong.
Aggregates: accuracy overall, by subject, by discipline (MMMU's six groups), by difficulty and by
question type (the TSV has no difficulty).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pebr_lit.data.images import ImageRef
from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    mcq_prompt,
)
from pebr_lit.eval.benchmarks.mmmu_rules import (
    official_choice,
    official_open_correct,
    open_predictions,
    vlmevalkit_open_options,
)
from pebr_lit.eval.benchmarks.tables import as_list, read_table, tsv_images
from pebr_lit.eval.vlmevalkit_rules import can_infer, choice_dict
from pebr_lit.format.response import IMAGE_SLOT, extract_answer

DISCIPLINES = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}
DISCIPLINE_OF = {subject: group for group, subjects in DISCIPLINES.items() for subject in subjects}


_IMAGE_REF = re.compile(r"<image (\d+)>")


def interleave(text: str, images: dict[int, ImageRef], source: str) -> tuple[str, tuple[ImageRef, ...]]:
    """``text`` with each "<image k>" turned into ``IMAGE_SLOT``, and the images in slot order.

    Text without references is returned as is (the images then come first). Images no reference
    names get slots at the start of the text; a reference to an image the row lacks is an error.
    """
    named = [int(k) for k in _IMAGE_REF.findall(text)]
    if not named:
        return text, tuple(images[k] for k in sorted(images))
    if missing := sorted(set(named) - set(images)):
        raise RecordError(
            source,
            f"the prompt names <image {missing[0]}> but the row has images {sorted(images)}",
            "Check that the file is the released one",
            "question",
        )
    unnamed = [k for k in sorted(images) if k not in named]
    return IMAGE_SLOT * len(unnamed) + _IMAGE_REF.sub(IMAGE_SLOT, text), tuple(images[k] for k in unnamed + named)


class MMMU(Benchmark):
    """MMMU validation (900 questions over 30 subjects).

    Args:
        path: The MMMU/MMMU folder (subject folders), lmms-lab/MMMU's data folder, one parquet file, or
            VLMEvalKit's MMMU_DEV_VAL.tsv.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: Which files to read in a folder ("<split>-*.parquet"), or which rows of the TSV (its ``split`` column).
        scoring: ``vlmevalkit`` (default: VLMEvalKit's ``can_infer`` and ``MMMU_preproc``) or ``official``
            (MMMU's ``eval_utils.py`` rules).
    """

    default_name = "mmmu"
    default_split = "validation"
    layout = (
        "MMMU/MMMU's <Subject>/validation-*.parquet (id, question, options, answer, question_type, "
        "image_1..image_7, topic_difficulty) or VLMEvalKit's MMMU_DEV_VAL.tsv (id, question, A.., answer, split, image)"
    )
    choice_rules = {"vlmevalkit": "can_infer"}
    group_by = ("subject", "discipline", "topic_difficulty", "question_type")

    def load(self, path: Path) -> list[BenchmarkItem]:
        items = []
        for file in self.files(path):
            tsv, root = file.suffix.lower() == ".tsv", self.root(file)
            for source, row in read_table(file):
                if tsv and row.get("split") and row["split"] != self.split:
                    continue  # MMMU_DEV_VAL holds the dev split too
                items.append(self._tsv_item(row, source) if tsv else self._item(row, source, root))
        return items

    def _item(self, row: dict[str, Any], source: str, root: Path) -> BenchmarkItem:
        qtype = self.need(row, "question_type", source)
        options = tuple(str(o) for o in as_list(row.get("options")))
        if qtype == "multiple-choice" and not options:
            raise RecordError(
                source, "multiple-choice question without options", f"MMMU expects {self.layout}", "options"
            )
        images = {
            k: self.image(row[f"image_{k}"], source, f"image_{k}", root)
            for k in range(1, 8)
            if row.get(f"image_{k}") is not None
        }
        return self._build(row, source, options, qtype, images)

    def _tsv_item(self, row: dict[str, Any], source: str) -> BenchmarkItem:
        options = tuple(row[c] for c in LETTERS if str(row.get(c, "")).strip())
        images = dict(enumerate(tsv_images(self.need(row, "image", source), source), start=1))
        return self._build(row, source, options, "multiple-choice" if options else "open", images)

    def _build(
        self, row: dict[str, Any], source: str, options: tuple[str, ...], qtype: str, images: dict[int, ImageRef]
    ) -> BenchmarkItem:
        if not images:
            raise RecordError(source, "no image in image_1..image_7", f"MMMU expects {self.layout}", "image_1")
        qid = str(row.get("id") or self.need(row, "index", source))
        subject = re.sub(r"^(dev|validation|test)_|_\d+$", "", qid)  # "validation_Art_Theory_12" -> "Art_Theory"
        text = mcq_prompt(str(self.need(row, "question", source)), options, row.get("hint") or None)
        problem, ordered = interleave(text, images, source)
        return BenchmarkItem(
            qid=qid,
            problem=problem,
            answer=str(self.need(row, "answer", source)).strip(),
            images=ordered,
            kind=CHOICE if qtype == "multiple-choice" else FREE_FORM,
            options=options,
            source=source,
            meta={
                "subject": subject,
                "discipline": DISCIPLINE_OF.get(subject),
                "question_type": qtype,
                "topic_difficulty": row.get("topic_difficulty"),
                "subfield": row.get("subfield"),
            },
        )

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        text = extract_answer(response)
        if self.scoring == "vlmevalkit":
            if item.kind == CHOICE:
                return super().score(response, item)
            options = vlmevalkit_open_options(item.answer)  # the answer as written, even a list string
            return {"prediction": text, "correct": can_infer(text, choice_dict(options)) == "A"}
        if item.kind == CHOICE:
            choice = official_choice(text, item.options)
            return {"prediction": text, "choice": choice, "correct": choice == item.answer}
        golds = [str(g) for g in as_list(item.answer)] if item.answer.startswith("[") else [item.answer]
        return {"prediction": text, "correct": official_open_correct(golds, open_predictions(text))}
