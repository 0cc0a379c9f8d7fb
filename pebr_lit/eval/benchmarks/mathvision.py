"""MathVision (MATH-V): competition math with images; answers are option letters or free-form math.

Released layouts:
  - the MATH-V repository's ``data/test.jsonl`` (3,040 rows) and ``data/testmini.jsonl`` (304), checked
    against the real files (``mathllm/MATH-V`` at commit a1f5cc3add200c0cd080fad463e500f44ef1fb41):
    ``id`` str; ``question`` str; ``options`` list[str] (empty for free-form, else 5 entries; 384 of the
    test rows have just ["A", ..., "E"] because the options are drawn in the image); ``answer`` str (a
    letter when there are options); ``solution`` str or null; ``level`` int 1-5; ``subject`` str (16);
    ``image`` "images/<id>.jpg", relative to the repository root (the folder above ``data/``, which is
    where relative paths start when the file sits in a folder named ``data``).
    Every row has one image, but the question may name several placeholders ("<image1>", "<image2>",
    up to "<image7>"; 2 test rows name none): they are parts of that one merged image.
  - Hugging Face ``MathLLMs/MathVision`` ``data/test-*.parquet`` / ``data/testmini-*.parquet`` (the same
    fields plus ``decoded_image`` Image): from the dataset card, NOT checked against the real files.
  - VLMEvalKit's ``MathVision.tsv`` / ``MathVision_MINI.tsv``, NOT checked: ``index``, ``question``,
    ``choices`` (a list string), ``answer``, ``category`` (the subject), ``level`` when present,
    ``image`` (base64).

Prompt: the question, then for multiple choice "Choices:" and one "(A) option" line per option (MATH-V's
own prompt writes the same lines without the "Choices:" header), skipped when the options are only the
letters A-E (as MATH-V's prompt does) or when the question already writes its options in. The image is
placed at the first "<image1>" (``format.IMAGE_SLOT``, as MMMU's images are), or before the text when
the question names none; the other placeholders stay as text, naming parts of the merged image.
Scoring (``scoring``): ``vlmevalkit`` (default; ``mathvision_rules``) is VLMEvalKit's ``post_check`` for
MathVision: multiple choice by ``can_infer``, free form by its ``is_equal`` (same text, same arithmetic
value, or same value after ``latex2sympy``). ``official`` (``mathvision_official``) is MATH-V's
``evaluate.py``: its answer clean-up of the response, then ``is_equal`` against the answer letter or the
option text.
Aggregates: accuracy overall, by subject and by level, as MATH-V reports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    with_choices,
)
from pebr_lit.eval.benchmarks.mathvision_official import official_answer, official_equal
from pebr_lit.eval.benchmarks.mathvision_rules import vlmevalkit_equal
from pebr_lit.eval.benchmarks.tables import as_list, is_tsv, read_table
from pebr_lit.format.response import IMAGE_SLOT, extract_answer

PLACEHOLDER = "<image1>"


def place_image(question: str) -> str:
    """``question`` with its first "<image1>" turned into ``IMAGE_SLOT``; unchanged when it has none."""
    return question.replace(PLACEHOLDER, IMAGE_SLOT, 1)


class MathVision(Benchmark):
    """MathVision test (3,040 questions) or testmini (304).

    Args:
        path: The split's parquet or JSONL file (or a folder holding it, read with ``split``), or VLMEvalKit's TSV.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder, or the
            folder above it when that is named ``data`` (MATH-V's layout).
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split (test or testmini).
        scoring: ``vlmevalkit`` (default: VLMEvalKit's MathVision rule) or ``official`` (MATH-V's ``evaluate.py``).
    """

    default_name = "mathvision"
    default_split = "test"
    layout = (
        "MathLLMs/MathVision's parquet or MATH-V's jsonl (id, question, options, answer, level, subject, "
        "decoded_image/image) or VLMEvalKit's MathVision.tsv (index, question, choices, answer, category, image)"
    )
    choice_rules = {"vlmevalkit": "can_infer"}
    group_by = ("subject", "level")

    def root(self, path: Path) -> Path:
        root = super().root(path)
        return root.parent if self.image_root is None and root.name == "data" else root

    def load(self, path: Path) -> list[BenchmarkItem]:
        root = self.root(path)
        return [self._item(row, s, root, is_tsv(file)) for file in self.files(path) for s, row in read_table(file)]

    def _item(self, row: dict[str, Any], source: str, root: Path, tsv: bool) -> BenchmarkItem:
        options = tuple(str(o) for o in as_list(row.get("options", row.get("choices"))))
        drawn = options == tuple(LETTERS[: len(options)])  # the options are in the image
        problem = place_image(str(self.need(row, "question", source)))
        level = row.get("level")
        return BenchmarkItem(
            qid=str(row.get("id") or self.need(row, "index", source)),
            problem=problem if drawn else with_choices(problem, options),
            answer=str(self.need(row, "answer", source)).strip(),
            images=self.row_images(row, source, root, tsv),
            kind=CHOICE if options else FREE_FORM,
            options=options,
            source=source,
            meta={
                "subject": row.get("subject") or row.get("category"),
                "level": None if level is None or level == "" else str(level),
            },
        )

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        text = extract_answer(response)
        if self.scoring == "official":
            answer, letters = official_answer(text), LETTERS[: len(item.options)]
            value = item.options[letters.index(item.answer)] if item.answer in letters else ""  # the option text
            correct = official_equal(answer, item.answer) or official_equal(answer, value)
            if item.kind != CHOICE:
                return {"prediction": answer, "correct": correct}
            letter = answer.upper() if len(answer) == 1 and answer.upper() in letters else None  # what MATH-V left
            return {"prediction": answer, "choice": letter, "correct": correct}
        if item.kind == CHOICE:
            return super().score(response, item)
        return {"prediction": text, "correct": vlmevalkit_equal(text, item.answer)}
