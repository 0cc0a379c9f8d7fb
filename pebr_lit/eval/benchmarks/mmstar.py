"""MMStar: 1,500 vision-indispensable multiple-choice questions over six core capabilities.

Released layouts (schemas from the ``Lin-Chen/MMStar`` dataset card and VLMEvalKit's dataset code,
NOT checked against the real files: they live only on the hub, and the ``MMStar-Benchmark/MMStar``
repository holds none):
  - ``mmstar.parquet``: ``index`` int; ``question`` str with the options written in
    ("...\\nOptions: A: ..., B: ..., C: ..., D: ..."); ``image`` Image ({"bytes", "path"});
    ``answer`` str (a letter); ``category`` str (6 core capabilities); ``l2_category`` str
    (18 detailed axes); ``meta_info`` struct (``source``, ``split``, ``image_path``).
  - ``MMStar.tsv`` (VLMEvalKit): ``index``, ``question``, option columns ``A``.. ``D``, ``answer``,
    ``category``, ``l2-category``, ``image`` (base64).
Prompt: VLMEvalKit's multiple-choice prompt ("Question: ...", "Options:" with "A. ..." lines, a selection line)
for both layouts, so a question reads the same whichever file it came from: the parquet's question is split
into its stem (the text before "Options:") and its options.
Scoring (``scoring``): ``vlmevalkit`` (default) is VLMEvalKit's exact matching, ``can_infer``
(``eval.vlmevalkit_rules``); ``official`` is MMStar's own ``MMStar_eval`` (MMStar-Benchmark/MMStar
``eval/vlmeval/evaluate/mmstar.py`` at commit 79e6d1cbab00576162fc8c878a4ad584f98b4868): the lower-cased,
stripped prediction is right when its first character is the answer letter, or it starts "(" / "option " /
"the answer is " followed by that letter. Both grade the final-answer section.
Aggregates: accuracy overall, by core capability (``category``) and by detailed axis (``l2_category``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    inline_options,
    mcq_prompt,
)
from pebr_lit.eval.benchmarks.tables import is_tsv, read_table, tsv_images
from pebr_lit.format.response import extract_answer

_OPTIONS_MARK = re.compile(r"\s*\bOptions\s*[:：]")
_OFFICIAL_PREFIXES = ("(", "option ", "the answer is ")


def mmstar_official(prediction: str, truth: str) -> bool:
    """MMStar's ``MMStar_eval`` verdict: the answer letter at the start of the lower-cased prediction, alone or
    after "(", "option " or "the answer is " (so "Because ..." counts as B, as in the released scorer)."""
    answer = truth.lower().strip().replace("\n", " ")
    text = prediction.lower().strip().replace("\n", " ")
    if not text:
        return False
    if text[0] == answer:
        return True
    return any(text.startswith(p) and text[len(p) : len(p) + 1] == answer for p in _OFFICIAL_PREFIXES)


def question_stem(question: str) -> str:
    """The question without the "Options: A: ..., B: ..." block the parquet writes after it."""
    marks = list(_OPTIONS_MARK.finditer(question))
    return question[: marks[-1].start()].rstrip() if marks else question


class MMStar(Benchmark):
    """MMStar (1,500 questions).

    Args:
        path: ``mmstar.parquet``, VLMEvalKit's ``MMStar.tsv``, or a folder holding them (only these are read).
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        scoring: ``vlmevalkit`` (default: ``can_infer``) or ``official`` (MMStar's ``MMStar_eval``).
    """

    default_name = "mmstar"
    layout = (
        "Lin-Chen/MMStar's mmstar.parquet (index, question with options, image, answer, "
        "category, l2_category) or VLMEvalKit's MMStar.tsv"
    )
    group_by = ("category", "l2_category")
    choice_rules = {"vlmevalkit": "can_infer"}

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items = self.root(path), []
        for source, row, tsv in ((s, r, is_tsv(f)) for f in self.files(path) for s, r in read_table(f)):
            question = str(self.need(row, "question", source))
            if tsv:
                options = self.options_needed(
                    tuple(row[c] for c in LETTERS if str(row.get(c, "")).strip()), source, "A-Z columns"
                )
                problem = mcq_prompt(question, options, row.get("hint") or None)
                images = tuple(tsv_images(self.need(row, "image", source), source))
            else:
                options = self.options_needed(inline_options(question), source, "question (no 'Options: A: ...')")
                problem = mcq_prompt(question_stem(question), options)
                images = (self.image(self.need(row, "image", source), source, "image", root),)
            items.append(
                BenchmarkItem(
                    qid=str(self.need(row, "index", source)),
                    problem=problem,
                    answer=str(self.need(row, "answer", source)).strip(),
                    images=images,
                    kind=CHOICE,
                    options=options,
                    source=source,
                    meta={
                        "category": row.get("category"),
                        "l2_category": row.get("l2_category", row.get("l2-category")),
                    },
                )
            )
        return items

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        if self.scoring != "official":
            return super().score(response, item)
        text = extract_answer(response)
        return {"prediction": text, "correct": mmstar_official(text, item.answer)}
