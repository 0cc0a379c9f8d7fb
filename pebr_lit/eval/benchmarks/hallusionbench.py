"""HallusionBench: yes/no questions on original and edited figures; question-, figure- and all-level accuracy.

Released layouts:
  - the official ``HallusionBench.json``, checked against the real file (``tianyi-lab/HallusionBench`` at
    commit 744007c232c292942c7f80eb61edb2465482da31): a list of 1,129 objects, all with ``category`` "VD" |
    "VS"; ``subcategory`` str (VD: figure, illusion, math, ocr, video; VS: chart, map, ocr, table);
    ``visual_input`` "0" (no image, 178 VS questions) | "1" (original figure, 447) | "2" (edited
    figure, 504); ``set_id``, ``figure_id``, ``question_id``: str; ``sample_note``; ``question``;
    ``gt_answer_details``; ``gt_answer`` "1" (yes) | "0" (no); ``filename`` "./VS/chart/0_1.png" or null
    (text-only). The images come in ``hallusion_bench.zip`` (not in the repository): set ``image_root``
    to the unzipped folder holding ``VD/`` and ``VS/``. Read here: 951 image questions over 346 figures.
    A VS figure_id starts at 1 (VS figure 0 is the text-only context), so figure_id does not tell
    original from edited; ``visual_input`` does.
  - ``lmms-lab/HallusionBench`` ``data/image-*.parquet`` (951 rows; the same fields with ``image`` an
    Image): from the dataset card, NOT checked against the real file.
  - VLMEvalKit's ``HallusionBench.tsv`` (image questions only), NOT checked against the real file:
    ``index`` (its 4th, 5th and 6th "_"-separated parts are set_id, figure_id and question_id, as
    VLMEvalKit's scorer reads them), ``category`` (VD | VS), ``l2-category`` (the subcategory),
    ``question``, ``answer`` "Yes" | "No", ``image`` (base64; a short cell names the row whose image it
    repeats). It has no ``visual_input``, so easy/hard qAcc are not computed from it (null).
Questions without an image are skipped when ``skip_text_only`` (the default; VLMEvalKit evaluates
the 951 image questions) and counted in the results as ``skipped_text_only``; otherwise they are an error.
Prompt: the question as published (VLMEvalKit adds nothing).
Scoring: ``vlmevalkit`` (the only mode) is VLMEvalKit's ``YOrN_Extraction`` on the final-answer section
(``eval.vlmevalkit_rules``: "yes" or "no" as a word, not both; else Unknown, wrong) against ``gt_answer``.
``official`` is refused: the official scorer asks GPT-4 whether the response agrees with
``gt_answer_details``; the optional ``eval.judge`` reads a Yes/No out of a free-text response instead.
Aggregates, as the official ``utils.py`` defines them:
  - aAcc: accuracy over all questions;
  - fAcc: share of figures (category, subcategory, set_id, figure_id) whose questions are all right
    (VS questions with figure_id 0, which have no figure, are left out);
  - qAcc: share of questions (category, subcategory, set_id, question_id) answered right on every figure;
  - easy_qAcc / hard_qAcc: qAcc over the original figures (``visual_input`` "1") / the edited ones ("2");
  each also per category (VD, VS) and per subcategory. The official numbers also count the 178
  text-only questions in aAcc and qAcc; with them skipped, these are VLMEvalKit's image-only figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import (
    YES_NO,
    Benchmark,
    BenchmarkItem,
    all_correct_by,
    mean,
)
from pebr_lit.eval.benchmarks.tables import is_tsv, read_table

KEYS = ("category", "subcategory", "set_id", "figure_id", "question_id")
TRUTHS = {"1": "yes", "0": "no", "yes": "yes", "no": "no"}  # gt_answer "1"/"0"; the TSV's answer "Yes"/"No"


def _figure(row: dict[str, Any]) -> tuple | None:
    m = row["meta"]
    if m["category"] == "VS" and m["figure_id"] == "0":
        return None
    return (m["category"], m["subcategory"], m["set_id"], m["figure_id"])


def _question(row: dict[str, Any]) -> tuple:
    m = row["meta"]
    return (m["category"], m["subcategory"], m["set_id"], m["question_id"])


def hallusion_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """aAcc, fAcc, qAcc, easy_qAcc, hard_qAcc and counts over scored rows (``meta`` holds ``KEYS``)."""
    figures = all_correct_by(rows, _figure)
    questions = all_correct_by(rows, _question)
    # Original vs edited figure is visual_input "1" vs "2" (the official split); a TSV row has neither.
    easy = all_correct_by([r for r in rows if r["meta"].get("visual_input") == "1"], _question)
    hard = all_correct_by([r for r in rows if r["meta"].get("visual_input") == "2"], _question)
    return {
        "aAcc": mean(r["correct"] for r in rows),
        "fAcc": mean(figures.values()),
        "qAcc": mean(questions.values()),
        "easy_qAcc": mean(easy.values()),
        "hard_qAcc": mean(hard.values()),
        "n": len(rows),
        "figures": len(figures),
        "questions": len(questions),
    }


class HallusionBench(Benchmark):
    """HallusionBench image questions (951).

    Args:
        path: lmms-lab's ``image`` parquet (or its data folder, read with ``split``), the official
            ``HallusionBench.json``, or VLMEvalKit's TSV.
        limit: Evaluate only the first N questions; null = all (fAcc/qAcc need whole groups).
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split.
        scoring: ``vlmevalkit`` (the only mode: the official scorer is a GPT-4 judge).
        skip_text_only: Leave out questions without an image (counted); false makes them an error.
    """

    default_name = "hallusionbench"
    layout = (
        "lmms-lab/HallusionBench's image parquet or the official json (category, subcategory, visual_input, "
        "set_id, figure_id, question_id, question, gt_answer, image/filename) or VLMEvalKit's HallusionBench.tsv"
    )
    headline = ("qAcc", "fAcc", "aAcc")
    scoring_modes = ("vlmevalkit",)
    scoring_refusals = {
        "official": "HallusionBench's official scorer is a GPT-4 judge comparing the response with "
        "gt_answer_details (configure the judge instead)"
    }

    def __init__(
        self,
        path: str,
        limit: int | None = None,
        image_root: str | None = None,
        name: str | None = None,
        split: str = "image",
        scoring: str | None = None,
        skip_text_only: bool = True,
    ) -> None:
        super().__init__(path, limit, image_root, name, scoring=scoring)
        self.split = split
        self.skip_text_only = skip_text_only
        self.skipped_text_only = 0

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items, self.skipped_text_only = self.root(path), [], 0
        rows = ((r, is_tsv(f)) for f in self.files(path) for r in read_table(f, self.split if f.is_dir() else None))
        for (source, row), tsv in rows:
            meta = self._tsv_keys(row, source) if tsv else {k: str(self.need(row, k, source)) for k in KEYS}
            if str(row.get("visual_input", "1")) == "0":
                if not self.skip_text_only:
                    raise RecordError(
                        source,
                        "question without an image (visual_input 0)",
                        "Evaluate the image split, or set skip_text_only: true",
                        "visual_input",
                    )
                self.skipped_text_only += 1
                continue
            column = "answer" if tsv else "gt_answer"
            truth = TRUTHS.get(str(self.need(row, column, source)).strip().lower())
            if truth is None:
                raise RecordError(
                    source,
                    f"{column} {row[column]!r} is not '1'/'0' (gt_answer) or 'Yes'/'No' (TSV answer)",
                    f"HallusionBench expects {self.layout}",
                    column,
                )
            items.append(
                BenchmarkItem(
                    qid="_".join(meta[k] for k in KEYS),
                    problem=str(self.need(row, "question", source)),
                    answer=truth,
                    images=self.row_images(row, source, root, tsv, ("image", "filename")),
                    kind=YES_NO,
                    meta={**meta, "visual_input": str(row.get("visual_input", ""))},
                    source=source,
                )
            )
        return items

    def _tsv_keys(self, row: dict[str, Any], source: str) -> dict[str, str]:
        parts = str(self.need(row, "index", source)).split("_")
        if len(parts) < 6:
            raise RecordError(
                source,
                f"index {row['index']!r} has no set_id/figure_id/question_id parts (4th-6th, '_'-separated)",
                "Use VLMEvalKit's HallusionBench.tsv as released",
                "index",
            )
        subcategory = row.get("l2-category") or row.get("subcategory")
        return {
            "category": str(self.need(row, "category", source)),
            "subcategory": str(subcategory or ""),
            "set_id": parts[3],
            "figure_id": parts[4],
            "question_id": parts[5],
        }

    def aggregate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        scores = hallusion_scores(rows)
        metrics = {"accuracy": scores["aAcc"], **scores, "skipped_text_only": self.skipped_text_only}
        breakdown: dict[str, dict[str, Any]] = {}
        for field in ("category", "subcategory"):
            values = sorted({r["meta"][field] for r in rows})
            breakdown[field] = {v: hallusion_scores([r for r in rows if r["meta"][field] == v]) for v in values}
        return {"metrics": metrics, "breakdown": breakdown}
