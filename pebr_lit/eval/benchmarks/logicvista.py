"""LogicVista: logical reasoning on diagrams and puzzles; answers are one or several option letters (or a number).

Released layout (the official ``Yijia-Xiao/LogicVista`` repository: ``data/dataset.json`` and
``data/images/<imagename>``; schema read from the repository's file, NOT checked against the
files here — no network access):
  a JSON object keyed by question id ("v1_0", ...), each value with ``imagename`` str; ``question``
  str (options, when written, are inside it: "A) 10 B) 12 ..."; otherwise in the image); ``answer``
  str: a letter ("C"), several letters ("A, C") or a number ("3"); ``reasoning`` str; ``skill``
  list (inductive, deductive, numerical, spatial, mechanical); ``capability`` list (diagram, ocr,
  patterns, graphs, tables, 3d shapes, puzzles, sequences, physics); ``imagesource``; ``sourcelink``.
  A JSON list of such objects with an ``id`` field reads the same way.
Prompt: the question as published.
Scoring: the chosen set of letters must equal the answer's set (VLMEvalKit compares sorted letter
sets after a GPT extraction; here ``eval.answers`` reads the letters by rule); number answers go
through the math-aware grader.
Aggregates: accuracy overall, by skill and by capability (an item counts under each of its entries).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks.base import CHOICE, FREE_FORM, Benchmark, BenchmarkItem, inline_options
from pebr_lit.eval.benchmarks.tables import as_list

_LETTERS_RE = re.compile(r"[A-Z](?:\s*,\s*[A-Z])*")


class LogicVista(Benchmark):
    """LogicVista (448 questions).

    Args:
        path: The official ``dataset.json`` (images under ``images/`` beside it).
        limit: Evaluate only the first N questions; null = all.
        image_root: Folder that ``imagename`` starts from; null = ``images/`` beside the JSON file.
        name: Name in metric keys and result files.
    """

    default_name = "logicvista"
    layout = "LogicVista's data/dataset.json: {id: {imagename, question, answer, skill, capability}} with images/ beside it"
    group_by = ("skill", "capability")

    def root(self, path: Path) -> Path:
        return Path(self.image_root).expanduser() if self.image_root is not None else path.parent / "images"

    def load(self, path: Path) -> list[BenchmarkItem]:
        if path.is_dir():
            path = path / "dataset.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RecordError(str(path), f"cannot read as JSON ({e})", f"LogicVista expects {self.layout}") from None
        entries = list(data.items()) if isinstance(data, dict) else [(str(d.get("id", i)) if isinstance(d, dict) else str(i), d)
                                                                     for i, d in enumerate(data, start=1)]
        root = self.root(path)
        items = []
        for qid, row in entries:
            source = f"{path}:{qid}"
            if not isinstance(row, dict):
                raise RecordError(source, f"expected an object, got {type(row).__name__}", f"LogicVista expects {self.layout}")
            question = str(self.need(row, "question", source))
            answer = str(self.need(row, "answer", source)).strip()
            items.append(BenchmarkItem(
                qid=qid, problem=question, answer=answer, kind=CHOICE if _LETTERS_RE.fullmatch(answer) else FREE_FORM,
                options=inline_options(question), source=source,
                images=(self.image(str(self.need(row, "imagename", source)), source, "imagename", root),),
                meta={"skill": [str(s) for s in as_list(row.get("skill"))],
                      "capability": [str(c) for c in as_list(row.get("capability"))]},
            ))
        return items
