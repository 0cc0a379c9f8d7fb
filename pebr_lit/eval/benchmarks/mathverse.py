"""MathVerse (testmini): diagram math in five problem versions; multiple choice by letter and free-form answers.

Released layout (Hugging Face ``AI4Math/MathVerse``, ``testmini.parquet`` or ``testmini.json``; schema
from the dataset card and public evaluation code (VLMEvalKit, lmms-eval), NOT checked against the real
files here — no hub access):
  ``sample_index`` str/int (unique); ``problem_index``; ``problem_version`` "Text Dominant" |
  "Text Lite" | "Vision Intensive" | "Vision Dominant" | "Vision Only"; ``question`` str (may be
  empty for Vision Only); ``image`` Image ({"bytes", "path"}) or a path; ``answer`` str (a letter for
  multiple choice); ``question_type`` "multi-choice" | "free-form"; ``metadata`` struct
  (``split``, ``source``, ``subject``, ``subfield``); ``query_wo`` str; ``query_cot`` str;
  ``question_for_eval`` str (the full question with its choices, as the official judge reads it).
``testmini_text_only`` has no images and is refused with a message. Only that file could be checked
against a real one (``ZrrSkywalker/MathVerse`` ``data/testmini_text_only.json`` at commit
937b090597aeafb8e82b35d310a4bc5b9e2ea29d: 788 rows, ``image`` "", the fields above except
``question_for_eval``, ``metadata`` subjects capitalised, "Plane Geometry"); the repository's
``testmini.json`` (over 4 MiB) was not available, so the image file is NOT checked. Its multiple-choice
answers are not always a bare letter ("(C)", "False", "C\\nD", "090^\\circ T"): each is still graded by
``eval.answers`` (letter in parentheses, option text, several letters).
VLMEvalKit's ``MathVerse_MINI*.tsv`` read too: ``index``, ``problem_index``, ``problem_version``,
``question``, ``query_cot``, ``question_type``, ``question_for_eval``, ``answer``, ``metadata``
(a dict written as a string), ``image`` (base64; a short cell names the row whose image it repeats).

Prompt: ``query_cot`` by default (MathVerse's chain-of-thought prompt), or ``query_wo`` / ``question``.
Options for letter-or-text matching are split from ``question_for_eval`` ("Choices: A:... B:...");
Vision Only rows keep them in the image and are matched by letter only.
Scoring: both scorers have GPT extract the answer and then, unless the extraction equals the answer
exactly (MathVerse's ``score_answer_s2.py`` ``--quick_match``; VLMEvalKit's ``post_check_score``, which
strips both first), have GPT judge whether they agree. pebr-lit grades the final-answer section (or the
``eval.judge`` reading) as the extraction: the exact match first, the scorers' rule part, identical in
both ``scoring`` modes; where the scorers then ask GPT to judge agreement, pebr-lit uses a rule-based
stand-in (``eval.answers``: multiple choice by letter or option text, free form with the math-aware
grader), NOT the GPT judgement: numbers can differ from the scorers' where GPT would judge otherwise.
Aggregates: accuracy overall and by problem version, subject, subfield and question type.

Left out on purpose: the GPT-4 judging step of both scorers (their extraction step is the optional
``eval.judge``, whose reading these rules then grade; ``eval.judge`` does not judge agreement).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    Benchmark,
    BenchmarkItem,
    inline_options,
)
from pebr_lit.eval.benchmarks.tables import as_dict, is_tsv, read_table
from pebr_lit.format.response import extract_answer

PROMPTS = ("query_cot", "query_wo", "question")


class MathVerse(Benchmark):
    """MathVerse testmini (3,940 image questions).

    Args:
        path: ``testmini.parquet`` / ``testmini.json`` (or a folder holding it, read with ``split``), or a
            MathVerse_MINI TSV.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        prompt: Column used as the prompt: query_cot (official CoT prompt), query_wo or question.
        split: In a folder, read the files named after this split.
        scoring: ``vlmevalkit`` (default) or ``official``: the same rule part (an exact match), then the
            same rule-based stand-in for their GPT judgement.
    """

    default_name = "mathverse"
    layout = (
        "AI4Math/MathVerse's testmini parquet/json: sample_index, problem_version, question_type, "
        "answer, image, query_cot, question_for_eval, metadata"
    )
    group_by = ("problem_version", "subject", "subfield", "question_type")

    def __init__(
        self,
        path: str,
        limit: int | None = None,
        image_root: str | None = None,
        name: str | None = None,
        prompt: str = "query_cot",
        split: str = "testmini",
        scoring: str | None = None,
    ) -> None:
        super().__init__(path, limit, image_root, name, scoring=scoring)
        if prompt not in PROMPTS:
            raise ValueError(f"MathVerse.prompt={prompt!r}: not a MathVerse prompt column. Use one of {PROMPTS}.")
        self.prompt = prompt
        self.split = split

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items = self.root(path), []
        for source, row, tsv in ((s, r, is_tsv(f)) for f in self.files(path) for s, r in read_table(f)):
            if not row.get("image"):
                raise RecordError(
                    source,
                    "no image (text-only version)",
                    "Evaluate testmini.parquet/json; the text-only file has no images",
                    "image",
                )
            qtype = self.need(row, "question_type", source)
            meta_in = as_dict(row.get("metadata"))  # a struct, or a dict string in the TSV
            full_question = row.get("question_for_eval") or row.get("question") or ""
            kind, options = FREE_FORM, ()
            if qtype == "multi-choice":
                kind, options = CHOICE, inline_options(full_question)
            items.append(
                BenchmarkItem(
                    qid=str(row.get("sample_index") or self.need(row, "index", source)),
                    problem=str(self.need(row, self.prompt, source)),
                    answer=str(self.need(row, "answer", source)).strip(),
                    images=self.row_images(row, source, root, tsv, ("image",)),
                    kind=kind,
                    options=options,
                    source=source,
                    meta={
                        "problem_version": row.get("problem_version"),
                        "question_type": qtype,
                        "subject": meta_in.get("subject"),
                        "subfield": meta_in.get("subfield"),
                        "problem_index": None if row.get("problem_index") is None else str(row["problem_index"]),
                    },
                )
            )
        return items

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        scored = super().score(response, item)
        if extract_answer(response).strip() == item.answer.strip():  # the scorers' exact match
            scored["correct"] = True
        return scored
