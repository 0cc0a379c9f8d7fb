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
Prompt: the parquet's question as published (options already inside); for the TSV, VLMEvalKit's
multiple-choice prompt ("Question: ...", "Options:" with "A. ..." lines, a selection line).
Scoring: by letter or option text (options split from the question for the parquet).
Aggregates: accuracy overall, by core capability (``category``) and by detailed axis (``l2_category``).
"""

from __future__ import annotations

from pathlib import Path

from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    inline_options,
    mcq_prompt,
)
from pebr_lit.eval.benchmarks.tables import read_table, tsv_images


class MMStar(Benchmark):
    """MMStar (1,500 questions).

    Args:
        path: ``mmstar.parquet`` or VLMEvalKit's ``MMStar.tsv``.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
    """

    default_name = "mmstar"
    layout = (
        "Lin-Chen/MMStar's mmstar.parquet (index, question with options, image, answer, "
        "category, l2_category) or VLMEvalKit's MMStar.tsv"
    )
    group_by = ("category", "l2_category")

    def load(self, path: Path) -> list[BenchmarkItem]:
        root = self.root(path)
        tsv = path.suffix.lower() == ".tsv"
        items = []
        for source, row in read_table(path):
            question = str(self.need(row, "question", source))
            if tsv:
                options = tuple(row[c] for c in LETTERS if str(row.get(c, "")).strip())
                problem = mcq_prompt(question, options, row.get("hint") or None)
                images = tuple(tsv_images(self.need(row, "image", source), source))
            else:
                options, problem = inline_options(question), question
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
