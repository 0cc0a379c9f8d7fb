"""LogicVista: logical reasoning on diagrams and puzzles; answers are one or several option letters (or a number).

Released layout, checked against the official repository's ``data/dataset.json``
(``Yijia-Xiao/LogicVista`` at commit e5795f17189ce1243231250af7d8c112ae2c5a57: 448 entries, images in
``data/images/<imagename>``):
  a JSON object keyed by question id ("v1_0", ...), each value with ``imagename`` str; ``question``
  str (options, when written, are inside it: "(A) 30% (B) 40%", "A) 10 B) 12"; otherwise in the
  image, "Select from A-E"); ``answer`` str: a letter ("C"), several letters ("A, C") or a number
  ("3"); ``reasoning`` str; ``skill`` list (inductive, deductive, numerical, spatial, mechanical);
  ``broad_capability`` list ("diagram", "ocr", "diagram and ocr"); ``specific_capability`` list
  ("rule based pattern", "3d pattern", ...); ``imagesource``; ``sourcelink``; ``liscenced``.
  There is no ``capability`` field (VLMEvalKit's scorer notes the same and leaves it out).
  A JSON list of such objects with an ``id`` field reads the same way.
The released file holds one stub, v1_382, whose question and answer are empty: such rows are left
out and counted as ``skipped_empty`` (447 questions are scored); a row with a question but no answer
is an error. VLMEvalKit's ``LogicVista.tsv`` is not read (not checked).
Prompt: the question as published.
Scoring: ``vlmevalkit`` (the only mode): the chosen set of letters must equal the answer's set, as
VLMEvalKit's ``LogicVista_auxeval`` compares sorted letters; VLMEvalKit reads the letters with a GPT model
(``eval.judge``), here ``eval.answers.extract_choices`` reads them by rule (option text only within
``can_infer``'s length limit); number answers go through the math-aware grader. ``official`` is refused:
the LogicVista repository releases data but no scorer.
Aggregates: accuracy overall, by skill, by broad and by specific capability (an item counts under
each of its entries).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    Benchmark,
    BenchmarkItem,
    inline_options,
)
from pebr_lit.eval.benchmarks.tables import as_list, read_table

_LETTERS_RE = re.compile(r"[A-Z](?:\s*,\s*[A-Z])*")
GROUPS = ("skill", "broad_capability", "specific_capability")


class LogicVista(Benchmark):
    """LogicVista (448 entries, 447 with a question).

    Args:
        path: The official ``dataset.json`` (images under ``images/`` beside it), or the folder holding it.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that ``imagename`` starts from; null = ``images/`` beside the JSON file.
        name: Name in metric keys and result files.
        scoring: ``vlmevalkit`` (the only mode: LogicVista releases no scorer of its own).
    """

    default_name = "logicvista"
    layout = (
        "LogicVista's data/dataset.json: {id: {imagename, question, answer, skill, broad_capability, "
        "specific_capability}} with images/ beside it"
    )
    group_by = GROUPS
    scoring_modes = ("vlmevalkit",)
    scoring_refusals = {"official": "LogicVista's repository releases no scorer of its own (VLMEvalKit's is used)"}

    def __init__(
        self,
        path: str,
        limit: int | None = None,
        image_root: str | None = None,
        name: str | None = None,
        scoring: str | None = None,
    ) -> None:
        super().__init__(path, limit, image_root, name, scoring=scoring)
        self.skipped_empty = 0

    def root(self, path: Path) -> Path:
        return Path(self.image_root).expanduser() if self.image_root is not None else path.parent / "images"

    def load(self, path: Path) -> list[BenchmarkItem]:
        (path,) = self.files(path)  # a folder: its dataset.json only
        root, items, self.skipped_empty = self.root(path), [], 0
        for source, row in read_table(path):
            if not str(row.get("question") or "").strip() and not str(row.get("answer") or "").strip():
                self.skipped_empty += 1  # the release's stub entry (v1_382)
                continue
            question = str(self.need(row, "question", source))
            answer = str(self.need(row, "answer", source)).strip()
            items.append(
                BenchmarkItem(
                    qid=str(self.need(row, "id", source)),
                    problem=question,
                    answer=answer,
                    kind=CHOICE if _LETTERS_RE.fullmatch(answer) else FREE_FORM,
                    options=inline_options(question),
                    images=(self.image(str(self.need(row, "imagename", source)), source, "imagename", root),),
                    meta={g: [str(v) for v in as_list(row.get(g))] for g in GROUPS},
                    source=source,
                )
            )
        return items

    def aggregate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        result = super().aggregate(rows)
        result["metrics"]["skipped_empty"] = self.skipped_empty
        return result
