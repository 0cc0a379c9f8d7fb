"""MathVision (MATH-V): competition math with images; answers are option letters or free-form math.

Released layout (Hugging Face ``MathLLMs/MathVision``, ``data/test-*.parquet`` / ``data/testmini-*.parquet``,
and the MATH-V repository's ``data/test.jsonl`` / ``data/testmini.jsonl`` with ``images/<id>.jpg``;
schema from the dataset card and the repository's files, NOT checked against the real files here —
no hub access):
  ``id`` str; ``question`` str (with ``<image1>`` placeholders); ``options`` list[str] (empty for
  free-form; often just ["A", ..., "E"] when the options are drawn in the image); ``image`` str
  (relative path); ``decoded_image`` Image (parquet only); ``answer`` str (a letter when there are
  options); ``solution`` str or null; ``level`` int 1-5; ``subject`` str (16 subjects).

Prompt: the question, then for multiple choice "Choices:" and one "(A) option" line per option
(the convention of MATH-V's and lmms-eval's prompts); placeholders are kept as text.
Scoring (MATH-V's ``evaluate.py`` rule): right when the answer equals the letter or the option text;
free-form answers go through the math-aware grader.
Aggregates: accuracy overall, by subject and by level, as MATH-V reports them.
"""

from __future__ import annotations

from pathlib import Path

from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, LETTERS, Benchmark, BenchmarkItem, as_list, read_table


class MathVision(Benchmark):
    """MathVision test (3,040 questions) or testmini (304).

    Args:
        path: The split's parquet or JSONL file (or a folder holding it, read with ``split``).
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split (test or testmini).
    """

    default_name = "mathvision"
    default_split = "test"
    layout = "MathLLMs/MathVision's parquet or MATH-V's jsonl: id, question, options, answer, level, subject, decoded_image/image"
    group_by = ("subject", "level")

    def load(self, path: Path) -> list[BenchmarkItem]:
        root = self.root(path)
        items = []
        for source, row in read_table(path, self.split if path.is_dir() else None):
            question = str(self.need(row, "question", source))
            options = tuple(str(o) for o in as_list(row.get("options")))
            if options:
                question += "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
            image = row.get("decoded_image") or self.need(row, "image", source)
            items.append(BenchmarkItem(
                qid=str(self.need(row, "id", source)), problem=question, answer=str(self.need(row, "answer", source)).strip(),
                images=(self.image(image, source, "decoded_image", root),), kind=CHOICE if options else FREE_FORM,
                options=options, source=source,
                meta={"subject": row.get("subject"), "level": None if row.get("level") is None else str(row["level"])},
            ))
        return items
