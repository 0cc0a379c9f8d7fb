"""WeMath (testmini): multiple-choice math split into one-step sub-problems; accuracy plus the four-dimensional metric.

Released layout, checked against the real ``data/testmini.json`` of the ``We-Math/We-Math`` GitHub
repository (commit a57a0e83fc40d6ce1448926fe6495e57132e7b80: 1,740 rows, 525 problems, images in
``data/<image_path>``); the Hugging Face parquet and VLMEvalKit's ``WeMath.tsv`` are NOT checked:
  a JSON list; ``ID`` str ("2steps_1": shared by a problem's sub-questions); ``split``; ``knowledge
  concept`` str; ``question`` str; ``option`` str ("A. 9cm; B. 12cm; C. ...; E. No correct answer");
  ``answer`` str (a letter); ``image_path`` str ("2steps/image/1-1.png", from the JSON's folder) or
  Image ({"bytes", "path"}); ``key`` str: "2steps_1", "2steps_2", "2steps_multi", "3steps_1",
  "3steps_2", "3steps_3", "3steps_multi"; ``question number`` int; ``knowledge concept description``.
The ``option`` cell is hand-typed: separators are "; ", ";" or a space ("A. 45° B. 60° ;C. 120°"), a
label may use a full-width point ("B．②"), a stray ";" sits inside some texts ("around point ;O.") and
labels may skip ("C. No.; F. No correct answer"); a ";" glued before a capital and a point inside a
text ("triangle BE;G.") is dropped. ``split_options`` reads labels in rising order and
the prompt relabels them A, B, C, ... (the answer letter follows its option).
VLMEvalKit's ``WeMath.tsv`` (NOT checked): ``question``, option columns ``A``.., ``image`` (base64) as its
``WeMath.build_prompt`` reads them, ``answer`` (a letter), and ``ID`` / ``key`` (assumed: not seen in a real
file); the same prompt is built from it.
Prompt: VLMEvalKit's WeMath prompt: "Question: ...", then "Options:" with "A. ..." lines.
Scoring (``scoring``): ``vlmevalkit`` (default) is VLMEvalKit's ``mcq_vanilla_eval`` rule under ``exact_matching``,
its exact ``can_infer`` by letter or option text (``eval.vlmevalkit_rules``; its GPT step is the optional
``eval.judge``); a row whose option cell cannot be split (VLMEvalKit's TSV has option columns) is read by
``eval.answers.match_choice``'s letter rule instead; ``official`` is
We-Math's ``evaluation/four_dimensional_metrics.py`` (commit above): the text after the last "Answer"
(case-sensitive), with ">", "<", ":" and "." removed and stripped, must *start* with the truth letter.
Aggregates: accuracy overall and by key; and WeMath's four-dimensional metric over problems (rows
sharing an ``ID``, 525 in testmini) whose sub-questions are all present:
  IK (insufficient knowledge): some sub-question wrong and the composite wrong;
  IG (inadequate generalisation): all sub-questions right, the composite wrong;
  CM (complete mastery): composite right and all sub-questions right (strict) / any right (loose);
  RM (rote memorisation): composite right and some sub-question wrong (strict) / all wrong (loose);
  score = (N - 0.5 IG - RM - IK) / N, strict and loose; rates IK/N, IG/N, CM/N, RM/(CM+RM).
VLMEvalKit divides by a fixed 525; here N is the number of complete problems (525 on full testmini). And
We-Math's ``evaluation/accuracy.py`` (commits 681e0404 and d557c0b4 read; the same answer rule as ``official``):
One-step (S1), Two-step (S2) and Three-step (S3) accuracy (``step_accuracies``); its accuracy per knowledge
domain needs ``knowledge_structure_nodes.json`` and is not computed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.answers import extract_choice, match_choice
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    LETTERS,
    Benchmark,
    BenchmarkItem,
    accuracy_by,
    mcq_prompt,
    mean,
)
from pebr_lit.eval.benchmarks.tables import is_tsv, read_table
from pebr_lit.format.response import extract_answer

_KEY_RE = re.compile(r"^([23])steps_(\d|multi)$")
# An option label: a capital after the start, a space or a ";", then a point, then the option's text
# (a label followed by ";" is a stray fragment such as "Shape ;C.;", not an option).
_OFFICIAL_STRIP = re.compile(r"[<>:.]")
_LABEL_RE = re.compile(r"(?:^|(?<=[\s;；]))([A-H])\s*[.．]\s*(?=[^\s;；])")


def split_options(raw: str) -> dict[str, str]:
    """``{label: text}`` of a WeMath ``option`` cell, labels rising from A; {} when fewer than two are found."""
    marks: list[re.Match[str]] = []
    for m in _LABEL_RE.finditer(raw):
        if (not marks and m.group(1) == "A") or (marks and m.group(1) > marks[-1].group(1)):
            marks.append(m)
    out = {}
    for m, nxt in zip(marks, [*marks[1:], None]):
        text = raw[m.end() : nxt.start() if nxt else len(raw)]
        out[m.group(1)] = re.sub(r";(?=[A-Z][.．])", "", text).strip(" \t\n;；")  # "point ;O." -> "point O."
    return out if len(out) >= 2 else {}


def official_letter(answer: str) -> str | None:
    """We-Math's ``four_dimensional_metrics.py`` reading: the first character of the text after the last "Answer",
    once ">", "<", ":" and "." are removed, when it is one of A-H; else None."""
    tail = _OFFICIAL_STRIP.sub("", answer.split("Answer")[-1].strip()).strip()
    return tail[0] if tail and tail[0] in "ABCDEFGH" else None


def four_dimensional(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """WeMath's IK / IG / CM / RM counts, rates and scores over problems with all their sub-questions."""
    parts: dict[str, dict[str, bool]] = defaultdict(dict)
    steps: dict[str, int] = {}
    for row in rows:
        m = _KEY_RE.match(row["meta"]["key"] or "")
        if m:
            parts[row["meta"]["problem_id"]][m.group(2)] = bool(row["correct"])
            steps[row["meta"]["problem_id"]] = int(m.group(1))
    counts = dict.fromkeys(("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose"), 0)
    complete = 0
    for pid, got in parts.items():
        subs = [got.get(str(i)) for i in range(1, steps[pid] + 1)]
        if None in subs or "multi" not in got:
            continue  # a partial problem (``limit``) cannot be classified
        complete += 1
        all_right, any_right, multi = all(subs), any(subs), got["multi"]
        counts["IG"] += all_right and not multi
        counts["IK"] += (not all_right) and not multi
        counts["CM_strict"] += all_right and multi
        counts["CM_loose"] += any_right and multi
        counts["RM_strict"] += (not all_right) and multi
        counts["RM_loose"] += (not any_right) and multi
    out: dict[str, Any] = {"problems": complete, **counts}
    if complete:
        for mode in ("strict", "loose"):
            rm, cm = counts[f"RM_{mode}"], counts[f"CM_{mode}"]
            out[f"score_{mode}"] = (complete - 0.5 * counts["IG"] - rm - counts["IK"]) / complete
            out[f"CM_{mode}_rate"] = cm / complete
            out[f"RM_{mode}_rate"] = rm / (cm + rm) if cm + rm else None
        out["IK_rate"], out["IG_rate"] = counts["IK"] / complete, counts["IG"] / complete
    return out


def step_accuracies(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """``evaluation/accuracy.py``'s One-step (S1), Two-step (S2) and Three-step (S3) accuracies: S1 over the
    sub-questions, S2 / S3 over the composite questions of 2- / 3-step problems, counting only problems whose first
    sub-question is present (its tables are left-joined onto the ``Nsteps_1`` rows)."""
    parsed = [(m, r) for r in rows if (m := _KEY_RE.match(r["meta"]["key"] or ""))]
    firsts = {(m.group(1), r["meta"]["problem_id"]) for m, r in parsed if m.group(2) == "1"}
    subs: list[bool] = []
    composite: dict[str, list[bool]] = {"2": [], "3": []}
    for m, r in parsed:
        if (m.group(1), r["meta"]["problem_id"]) in firsts:
            (composite[m.group(1)] if m.group(2) == "multi" else subs).append(bool(r["correct"]))
    return {"s1_accuracy": mean(subs), "s2_accuracy": mean(composite["2"]), "s3_accuracy": mean(composite["3"])}


class WeMath(Benchmark):
    """WeMath testmini (1,740 questions, 525 multi-step problems).

    Args:
        path: ``testmini.json``, a parquet of the same columns or VLMEvalKit's ``WeMath.tsv`` (or a folder holding
            it: only these are read).
        limit: Evaluate only the first N questions; null = all (the four-dimensional metric needs whole problems).
        image_root: Folder that relative image paths start from; null = the data file's folder.
        name: Name in metric keys and result files.
        split: In a folder, read the files named after this split.
        scoring: ``vlmevalkit`` (default: ``can_infer``) or ``official`` (We-Math's first-letter rule).
    """

    default_name = "wemath"
    default_split = "testmini"
    layout = (
        "We-Math/We-Math's testmini: ID, key, question, option, answer, image_path, knowledge concept; "
        "or VLMEvalKit's WeMath.tsv (ID, key, question, A.., answer, image)"
    )
    group_by = ("key",)
    headline = ("score_strict", "score_loose", "accuracy")
    choice_rules = {"vlmevalkit": "can_infer"}  # mcq_vanilla_eval under exact_matching: can_infer, else "Z"

    def load(self, path: Path) -> list[BenchmarkItem]:
        root, items = self.root(path), []
        for source, row, tsv in ((s, r, is_tsv(f)) for f in self.files(path) for s, r in read_table(f)):
            pid, key = str(self.need(row, "ID", source)), str(self.need(row, "key", source))
            problem, options, answer = self._tsv_choices(row, source) if tsv else self._choices(row, source)
            items.append(
                BenchmarkItem(
                    qid=f"{pid}_{key}",
                    problem=problem,
                    answer=answer,
                    kind=CHOICE,
                    options=options,
                    source=source,
                    images=self.row_images(row, source, root, tsv, ("image_path",)),
                    meta={"problem_id": pid, "key": key, "knowledge_concept": row.get("knowledge concept")},
                )
            )
        return items

    def _choices(self, row: dict[str, Any], source: str) -> tuple[str, tuple[str, ...], str]:
        """The prompt, the option texts and the answer letter (relabelled with the options)."""
        raw, question = str(self.need(row, "option", source)), str(self.need(row, "question", source))
        answer = str(self.need(row, "answer", source)).strip()
        labelled = split_options(raw)
        if not labelled:  # WeMath's prompt stops after the options; unsplittable ones are shown as written
            return f"Question: {question}\nOptions: {raw}", (), answer
        if answer not in labelled:
            raise RecordError(
                source,
                f"answer {answer!r} is not one of the option labels {list(labelled)} in {raw!r}",
                "Check the file is the released one",
                "answer",
            )
        options = tuple(labelled.values())
        return mcq_prompt(question, options, select_line=False), options, LETTERS[list(labelled).index(answer)]

    def _tsv_choices(self, row: dict[str, Any], source: str) -> tuple[str, tuple[str, ...], str]:
        """The prompt, the option texts and the answer letter of a VLMEvalKit TSV row (options in columns A-Z)."""
        question, answer = str(self.need(row, "question", source)), str(self.need(row, "answer", source)).strip()
        options = self.options_needed(
            tuple(str(row[c]) for c in LETTERS if str(row.get(c, "")).strip()), source, "A-Z columns"
        )
        if answer not in LETTERS[: len(options)]:
            raise RecordError(
                source, f"answer {answer!r} is not one of the option letters", "Check the file is the released one"
            )
        return mcq_prompt(question, options, select_line=False), options, answer

    def score(self, response: str, item: BenchmarkItem) -> dict[str, Any]:
        if self.scoring == "vlmevalkit" and not item.options:  # no option texts for can_infer: read the letter
            text = extract_answer(response)
            return {
                "prediction": text,
                "choice": extract_choice(text, None),
                "correct": match_choice(text, None, item.answer),
            }
        if self.scoring == "vlmevalkit":
            return super().score(response, item)
        text = extract_answer(response)
        choice = official_letter(text)
        return {"prediction": text, "choice": choice, "correct": choice == item.answer}

    def aggregate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        metrics = {"accuracy": mean(r["correct"] for r in rows), "n": len(rows), **four_dimensional(rows)}
        metrics.update(step_accuracies(rows))
        return {"metrics": metrics, "breakdown": {"key": accuracy_by(rows, "key")}}
