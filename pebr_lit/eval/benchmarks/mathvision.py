"""MathVision (MATH-V): competition math with images; answers are option letters or free-form math.

Released layout (Hugging Face ``MathLLMs/MathVision``, ``data/test-*.parquet`` / ``data/testmini-*.parquet``,
and the MATH-V repository's ``data/test.jsonl`` / ``data/testmini.jsonl`` with ``images/<id>.jpg``;
schema from the dataset card and the repository's files, NOT checked against the real files here —
no hub access):
  ``id`` str; ``question`` str (with ``<image1>`` placeholders); ``options`` list[str] (empty for
  free-form; often just ["A", ..., "E"] when the options are drawn in the image); ``image`` str
  (relative path); ``decoded_image`` Image (parquet only); ``answer`` str (a letter when there are
  options); ``solution`` str or null; ``level`` int 1-5; ``subject`` str (16 subjects).
VLMEvalKit's ``MathVision.tsv`` / ``MathVision_MINI.tsv`` read too: ``index``, ``question``,
``choices`` (a list string), ``answer`` (a letter when there are choices), ``category`` (the
subject), ``level`` when present, ``image`` (base64).

Prompt: the question, then for multiple choice "Choices:" and one "(A) option" line per option
(the convention of MATH-V's and lmms-eval's prompts; skipped when the question already writes its
options in); "<image1>" placeholders are kept as text (every question has one image).
Scoring (MATH-V's ``evaluate.py`` rule): right when the answer equals the letter or the option text;
free-form answers go through the math-aware grader.
Aggregates: accuracy overall, by subject and by level, as MATH-V reports them.
"""

from __future__ import annotations

from pathlib import Path

from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, Benchmark, BenchmarkItem, with_choices
from pebr_lit.eval.benchmarks.tables import as_list, is_tsv, read_table


class MathVision(Benchmark):
    """MathVision test (3,040 questions) or testmini (304).

    Args:
        path: The split's parquet or JSONL file (or a folder holding it, read with ``split``), or VLMEvalKit's TSV.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split (test or testmini).
    """

    default_name = "mathvision"
    default_split = "test"
    layout = ("MathLLMs/MathVision's parquet or MATH-V's jsonl (id, question, options, answer, level, subject, "
              "decoded_image/image) or VLMEvalKit's MathVision.tsv (index, question, choices, answer, category, image)")
    group_by = ("subject", "level")

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, tsv = self.root(path), is_tsv(path)
        items = []
        for source, row in read_table(path, self.split if path.is_dir() else None):
            options = tuple(str(o) for o in as_list(row.get("options", row.get("choices"))))
            level = row.get("level")
            items.append(BenchmarkItem(
                qid=str(row.get("id") or self.need(row, "index", source)),
                problem=with_choices(str(self.need(row, "question", source)), options),
                answer=str(self.need(row, "answer", source)).strip(), images=self.row_images(row, source, root, tsv),
                kind=CHOICE if options else FREE_FORM, options=options, source=source,
                meta={"subject": row.get("subject") or row.get("category"),
                      "level": None if level is None or level == "" else str(level)},
            ))
        return items
