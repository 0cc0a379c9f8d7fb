"""MathVista (testmini): math reasoning in visual contexts; multiple choice by option text, free-form numbers and lists.

Released layouts:
  - the MathVista repository's ``data/testmini.json``, checked against the real file
    (``lupantech/MathVista`` at commit 53d525874bdde205128e6b160b7357a88277d479: 1,000 questions): a JSON
    object keyed by pid, each value with ``pid``, ``question``, ``image`` ("images/<pid>.jpg", from the
    JSON's folder; the images are downloaded apart), ``choices``, ``unit``, ``precision``, ``answer``,
    ``question_type``, ``answer_type``, ``metadata``; no ``query``: the prompts are in ``data/query.json``
    ({pid: query}, test and testmini), read from beside the data file when its rows have no ``query``.
  - ``AI4Math/MathVista`` ``data/testmini-*.parquet`` (from the dataset card's ``dataset_info``, NOT
    checked against the real file): ``pid`` str; ``question`` str; ``image`` str (relative path
    "images/<pid>.jpg"); ``decoded_image`` Image ({"bytes", "path"}); ``choices`` list[str] or null;
    ``unit`` str; ``precision`` float or null; ``answer`` str (for multiple choice the *option text*,
    not a letter); ``question_type`` "multi_choice" | "free_form"; ``answer_type`` "text" | "integer"
    | "float" | "list"; ``metadata`` struct (``category``, ``context``, ``grade``, ``img_height``,
    ``img_width``, ``language``, ``skills`` list, ``source``, ``split``, ``task``); ``query`` str.
    A JSON/JSONL list with the same fields (images as paths under ``image_root``) reads the same way.
  - VLMEvalKit's ``MathVista_MINI.tsv`` (NOT checked): ``index``, ``question`` (the prompt), ``answer``
    (option text for multiple choice), ``answer_option`` (its letter), ``choices`` (a list string),
    ``question_type``, ``answer_type``, ``precision``, ``task``, ``skills`` (a list string), other
    metadata as top-level columns, ``image`` (base64).
The ``test`` split hides its answers, so it is refused with a message.

Prompt: the ``query`` column (the TSV's ``question``; ``query.json`` for the repository's file),
MathVista's own prompt (a "Hint:" naming the expected answer form, the question and, for multiple
choice, "Choices:" with "(A) ..." lines, added when the text lacks them).
Scoring (``scoring``; the rules are in ``mathvista_rules``): ``vlmevalkit`` (default) follows VLMEvalKit's
``post_check`` (multiple choice by ``can_infer``; integers and floats by Python equality, no rounding;
list answers never right, as there); ``official`` follows MathVista's ``normalize_extracted_answer`` and
``safe_equal`` (multiple choice: a letter, else the option closest by edit distance; integers after
``int(float(x))``, floats rounded to ``precision``, then exact string equality with the answer). Both
grade the final-answer section where their scorers have GPT extract the answer.
Aggregates: accuracy overall and by question type, answer type, task, category, context, grade,
source, language and skill (an item counts under each of its skills), as MathVista reports them.

Left out on purpose: the scorers' own GPT extraction prompts (an optional judge model reading the answer is
``eval.judge``, whose reading these rules then grade).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    with_choices,
)
from pebr_lit.eval.benchmarks.mathvista_rules import (
    QUICK_EXTRACT,
    official_correct,
    official_normalize,
    vlmevalkit_number_correct,
)
from pebr_lit.eval.benchmarks.tables import as_dict, as_list, is_tsv, read_table
from pebr_lit.format.response import extract_answer

META_FIELDS = ("task", "category", "context", "grade", "source", "language", "skills")


class MathVista(Benchmark):
    """MathVista testmini (1,000 questions).

    Args:
        path: ``testmini-*.parquet`` (or a folder holding it, read with ``split``), the repository's ``testmini.json``
            (``query.json`` beside it), JSON/JSONL with the same fields, or MathVista_MINI.tsv.
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split.
        scoring: ``vlmevalkit`` (default: VLMEvalKit's ``post_check``) or ``official`` (MathVista's
            ``normalize_extracted_answer`` and ``safe_equal``).
        quick_extract: With ``official``: MathVista's ``--quick_extract``: a response containing
            'The answer is "X".' is graded on X instead of its final-answer section.
    """

    default_name = "mathvista"
    default_split = "testmini"
    layout = (
        "AI4Math/MathVista's testmini parquet (pid, query, answer, question_type, answer_type, "
        "choices, precision, decoded_image/image, metadata), the repository's data/testmini.json with "
        "data/query.json beside it, or VLMEvalKit's MathVista_MINI.tsv"
    )
    choice_rules = {"vlmevalkit": "can_infer"}
    group_by = ("question_type", "answer_type", *META_FIELDS)

    def __init__(
        self,
        path: str,
        limit: int | None = None,
        image_root: str | None = None,
        name: str | None = None,
        split: str | None = None,
        scoring: str | None = None,
        quick_extract: bool = False,
    ) -> None:
        super().__init__(path, limit, image_root, name, split, scoring)
        if quick_extract and self.scoring != "official":
            raise ValueError(
                f"MathVista.quick_extract=True with scoring={self.scoring!r}: it is an option of MathVista's own "
                "extract_answer.py. Set scoring: official, or quick_extract: false."
            )
        self.quick_extract = quick_extract

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items = self.root(path), []
        for file in self.files(path):
            tsv, queries = is_tsv(file), _queries(file)
            items += [self._item(row, source, root, tsv, queries) for source, row in read_table(file)]
        return items

    def _item(self, row: dict[str, Any], source: str, root: Path, tsv: bool, queries: dict[str, str]) -> BenchmarkItem:
        pid = str(row.get("pid") or self.need(row, "index", source))
        qtype = self.need(row, "question_type", source)
        answer = row.get("answer")
        if answer is None or not str(answer).strip():
            raise RecordError(
                source,
                "empty value in column 'answer'",
                "MathVista's test split hides its answers; evaluate testmini",
                "answer",
            )
        answer = str(answer).strip()
        meta_in = as_dict(row.get("metadata")) or row  # the TSV writes the metadata as columns
        meta: dict[str, Any] = {name: meta_in.get(name) for name in META_FIELDS}
        meta["skills"] = [str(s) for s in as_list(meta_in.get("skills"))]
        meta.update(question_type=qtype, answer_type=row.get("answer_type"), unit=row.get("unit") or None)
        if "query" not in row and pid in queries:
            row = {**row, "query": queries[pid]}  # the repository keeps the prompts in query.json
        problem = str(self.need(row, "question" if tsv else "query", source))  # the TSV's question is the query
        options: tuple[str, ...] = ()
        kind = FREE_FORM
        if qtype == "multi_choice":
            options = tuple(str(c) for c in as_list(self.need(row, "choices", source)))
            letter = str(row.get("answer_option") or "").strip()
            if answer in options:
                letter = LETTERS[options.index(answer)]
            elif letter not in LETTERS[: len(options)] or not letter:
                raise RecordError(
                    source,
                    f"answer {answer!r} is not one of the choices {list(options)}",
                    "MathVista multiple-choice answers are option texts; check the file",
                    "answer",
                )
            answer, kind, problem = letter, CHOICE, with_choices(problem, options)
        elif row.get("answer_type") == "float" and _number(row.get("precision")) is not None:
            meta["precision"] = int(_number(row["precision"]))  # decimals to round to before comparing
        return BenchmarkItem(
            qid=pid,
            problem=problem,
            answer=answer,
            images=self.row_images(row, source, root, tsv),
            kind=kind,
            options=options,
            meta=meta,
            source=source,
        )

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        text = extract_answer(response)
        qtype, atype = item.meta.get("question_type"), item.meta.get("answer_type")
        if self.scoring == "vlmevalkit":
            if item.kind == CHOICE:
                return super().score(response, item)
            return {"prediction": text, "correct": vlmevalkit_number_correct(text, item.answer, atype)}
        if self.quick_extract and (quick := QUICK_EXTRACT.search(response)):
            text = quick.group(1)  # extract_answer.py's --quick_extract, on the whole response as there
        prediction = official_normalize(text, item.options, qtype, atype, item.meta.get("precision"))
        if item.kind == CHOICE:
            truth = item.options[LETTERS.index(item.answer)]  # MathVista compares option texts
            return {
                "prediction": text,
                "choice": LETTERS[item.options.index(prediction)] if prediction in item.options else None,
                "correct": official_correct(prediction, truth),
            }
        return {"prediction": text, "correct": official_correct(prediction, item.answer)}


def _queries(path: Path) -> dict[str, str]:
    """``{pid: query}`` from the ``query.json`` beside a data file (MathVista's repository layout); {} if none."""
    file = path.parent / "query.json"
    if not path.is_file() or path.name == "query.json" or not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RecordError(
            str(file), f"cannot read as JSON ({e})", "Use MathVista's data/query.json as released"
        ) from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    """A finite number from a cell (parquet float, TSV text, empty or NaN -> None)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
