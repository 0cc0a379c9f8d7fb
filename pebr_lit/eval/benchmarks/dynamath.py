"""DynaMath: 501 seed math questions, each in 10 generated variants; average and worst-case accuracy.

Released layouts:
  - ``DynaMath/DynaMath_Sample`` (from the dataset card and VLMEvalKit's dataset code, NOT checked
    against the real files): one split per variant, ``data/sample_variant<k>-*.parquet`` (older
    revisions: ``data/sample<k>-*.parquet``), 501 rows each: ``id`` str (the seed question, shared by
    its variants); ``question`` str (choices, when any, written inside); ``image`` str (path);
    ``decoded_image`` Image; ``ground_truth`` str; ``answer_type`` "float" | "multiple choice" |
    free text; ``subject`` str; ``knowledge_level`` str. The variant number comes from the file name.
  - the seed questions of the DynaMath repository, ``dataset/dataset.json``, checked against the real
    file (``DynaMath/DynaMath`` at commit 598c3c3d732422d29580e9ecf8f2a7928a068fdd: 501 questions): an
    object keyed by id with ``question``, ``answer`` (for ``ground_truth``), ``image``
    ("image/image1.png", from the JSON's folder), ``answer_type`` ("float" 292, "multiple choice"
    174, "text" 31, "single answer" 2, "int" 2), ``subject``, ``level`` (for ``knowledge_level``);
    choices are written "Choices: (A) yes (B) no" or "choice:(A) 2 (B) 1". Read as variant 1; these
    are not the 5,010 generated questions the published numbers use.
  - VLMEvalKit's ``DynaMath.tsv`` (NOT checked): ``index``, ``qid`` (seed), ``varid`` (variant),
    ``question``, ``answer``, ``answer_type``, ``subject``, ``knowledge_level``, ``image`` (base64).
Prompt: the question as published (DynaMath's own prompt asks for a JSON answer, which the PeBR
format replaces).
Scoring (``scoring``; the rules are in ``dynamath_rules``, the final-answer section standing for the JSON
"short answer" both scorers read): ``vlmevalkit`` (default) follows VLMEvalKit's ``DynaMath_auxeval``,
``official`` DynaMath's ``opensource_json_eval.py``: floats (first word, "π" read) within an absolute
0.001, multiple choice by letter rules, other answers by substring tests (in opposite directions).
Aggregates: average accuracy over all variants and worst-case accuracy (share of seed questions
answered right in every variant present), each overall, by subject and by knowledge level.
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
    accuracy_by,
    all_correct_by,
    inline_options,
    mean,
)
from pebr_lit.eval.benchmarks.dynamath_rules import official_correct, vlmevalkit_correct
from pebr_lit.eval.benchmarks.tables import read_table, tsv_images
from pebr_lit.format.response import extract_answer

_VARIANT_RE = re.compile(r"(?:variant|sample)_?(\d+)")


def worst_case(rows: list[dict[str, Any]], field: str | None = None) -> Any:
    """Share of seed questions right in all their variants; by ``meta[field]`` when a field is given."""
    seeds = all_correct_by(rows, lambda r: r["meta"]["seed"])
    if field is None:
        return mean(seeds.values())
    value_of = {r["meta"]["seed"]: r["meta"].get(field) for r in rows}
    groups: dict[str, list[bool]] = {}
    for seed, ok in seeds.items():
        groups.setdefault(str(value_of[seed]), []).append(ok)
    return {k: {"accuracy": mean(v), "n": len(v)} for k, v in sorted(groups.items())}


class DynaMath(Benchmark):
    """DynaMath (5,010 questions: 501 seeds x 10 variants).

    Args:
        path: The DynaMath_Sample data folder or one variant's parquet, the repository's seed ``dataset.json``,
            or VLMEvalKit's ``DynaMath.tsv``.
        limit: Evaluate only the first N questions; null = all (worst case needs every variant).
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        scoring: ``vlmevalkit`` (default: VLMEvalKit's ``DynaMath_auxeval`` rules) or ``official``
            (DynaMath's ``opensource_json_eval.py``).
    """

    default_name = "dynamath"
    layout = (
        "DynaMath/DynaMath_Sample's sample_variant<k> parquets (id, question, ground_truth, answer_type, "
        "subject, knowledge_level, decoded_image) or VLMEvalKit's DynaMath.tsv"
    )
    group_by = ("subject", "knowledge_level")
    headline = ("worst_case_accuracy", "accuracy")

    def load(self, path: Path) -> list[BenchmarkItem]:
        items = []
        for file in self.files(path):
            root, tsv = self.root(file), file.suffix.lower() == ".tsv"
            found = _VARIANT_RE.search(file.stem)
            for source, row in read_table(file):
                if tsv:
                    seed, variant = str(self.need(row, "qid", source)), str(self.need(row, "varid", source))
                    truth, images = (
                        self.need(row, "answer", source),
                        tuple(tsv_images(self.need(row, "image", source), source)),
                    )
                else:
                    seed, variant = str(self.need(row, "id", source)), found.group(1) if found else "1"
                    truth = self.need(row, "ground_truth" if "ground_truth" in row else "answer", source)
                    column = "decoded_image" if row.get("decoded_image") else "image"
                    images = (self.image(self.need(row, column, source), source, column, root),)
                question = str(self.need(row, "question", source))
                answer_type = str(self.need(row, "answer_type", source))
                items.append(
                    BenchmarkItem(
                        qid=f"{seed}_v{variant}",
                        problem=question,
                        answer=str(truth).strip(),
                        images=images,
                        kind=CHOICE if answer_type == "multiple choice" else FREE_FORM,
                        options=inline_options(question) if answer_type == "multiple choice" else (),
                        source=source,
                        meta={
                            "seed": seed,
                            "variant": variant,
                            "answer_type": answer_type,
                            "subject": row.get("subject"),
                            "knowledge_level": row.get("knowledge_level", row.get("level")),
                        },
                    )
                )
        return items

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        text = extract_answer(response)
        rule = vlmevalkit_correct if self.scoring == "vlmevalkit" else official_correct
        return {"prediction": text, "correct": rule(text, item.answer, item.meta["answer_type"])}

    def aggregate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        seeds = {r["meta"]["seed"] for r in rows}
        metrics = {
            "accuracy": mean(r["correct"] for r in rows),
            "worst_case_accuracy": worst_case(rows),
            "n": len(rows),
            "seeds": len(seeds),
        }
        breakdown = {g: accuracy_by(rows, g) for g in self.group_by}
        breakdown.update({f"worst_case_by_{g}": worst_case(rows, g) for g in self.group_by})
        return {"metrics": metrics, "breakdown": breakdown}
