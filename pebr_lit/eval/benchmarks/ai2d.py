"""AI2D (test): multiple-choice questions on grade-school science diagrams.

Released layouts (schemas from the ``lmms-lab/ai2d`` dataset card and VLMEvalKit's dataset code, NOT
checked against the real files: no public repository found here carries them):
  - ``lmms-lab/ai2d`` ``data/test-*.parquet`` (3,088 rows): ``question`` str; ``options`` list[str];
    ``answer`` str (the 0-based index of the right option, "0".."3"); ``image`` Image. No id column:
    questions are numbered in file order.
  - VLMEvalKit's ``AI2D_TEST.tsv``: ``index``, ``question``, option columns ``A``.. ``D``, ``answer``
    (a letter), optional ``category``/``l2-category``, ``image`` (base64).
Prompt: VLMEvalKit's multiple-choice prompt ("Question: ...", "Options:" with "A. ..." lines, a
selection line), the harness the paper's numbers come from.
Scoring: VLMEvalKit's exact matching, ``can_infer`` (``eval.vlmevalkit_rules``), on the final-answer section.
AI2D releases no scorer of its own for answers in free text (its accuracy is the share of right letters), so
``scoring: official`` is refused. Aggregates: accuracy overall, and by category when the file has one.
"""

from __future__ import annotations

from pathlib import Path

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    letter_of,
    mcq_prompt,
)
from pebr_lit.eval.benchmarks.tables import as_list, is_tsv, read_table, tsv_images


class AI2D(Benchmark):
    """AI2D test (3,088 questions in lmms-lab's parquet).

    Args:
        path: lmms-lab/ai2d's test parquet, VLMEvalKit's ``AI2D_TEST.tsv``, or a folder (only their names are read).
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split.
        scoring: ``vlmevalkit`` (the only mode: AI2D has no released scorer of its own).
    """

    default_name = "ai2d"
    default_split = "test"
    layout = (
        "lmms-lab/ai2d's test parquet (question, options, answer index, "
        "image) or VLMEvalKit's AI2D_TEST.tsv (index, question, A-D, answer letter, image)"
    )
    group_by = ("category",)
    scoring_modes = ("vlmevalkit",)
    scoring_refusals = {"official": "AI2D releases no answer scorer of its own (VLMEvalKit's is the reference)"}
    choice_rules = {"vlmevalkit": "can_infer"}

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items = self.root(path), []
        rows = ((r, is_tsv(f)) for f in self.files(path) for r in read_table(f, self.split if f.is_dir() else None))
        for n, ((source, row), tsv) in enumerate(rows, start=1):
            question = str(self.need(row, "question", source))
            answer = str(self.need(row, "answer", source)).strip()
            if tsv:
                qid = str(self.need(row, "index", source))
                options = self.options_needed(
                    tuple(row[c] for c in LETTERS if str(row.get(c, "")).strip()), source, "A-Z columns"
                )
                images = tuple(tsv_images(self.need(row, "image", source), source))
            else:
                qid = str(row.get("index", n))
                options = tuple(str(o) for o in as_list(self.need(row, "options", source)))
                if not answer.isdigit():
                    raise RecordError(
                        source, f"answer {answer!r} is not an option index", f"AI2D expects {self.layout}", "answer"
                    )
                answer = letter_of(int(answer), source, "answer", len(options))
                images = (self.image(self.need(row, "image", source), source, "image", root),)
            items.append(
                BenchmarkItem(
                    qid=qid,
                    problem=mcq_prompt(question, options),
                    answer=answer,
                    images=images,
                    kind=CHOICE,
                    options=options,
                    source=source,
                    meta={"category": row.get("category")},
                )
            )
        return items
