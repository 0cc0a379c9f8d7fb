"""Warm-up filter: the authors' SFT data rules (rethink text, missing and tiny images) -> record JSONL + summary.

Reads the authors' chat rows (``data.conversations``: ``messages`` + ``images``) or pebr-lit records with a
``response``, and keeps a row unless, checked in the authors' order (the first hit wins, so on rows in their
schema the rethink and missing counts are what their ``dataset/filter.py`` prints, and small + unreadable is
its "image size < 28"):
  1. ``rethink``: an assistant turn (a record: its ``response``) holds a reflective phrase, compared
     case-insensitively as a substring (default: the authors' one phrase, "let me rethink it");
  2. ``missing_image`` / ``unreadable_image`` / ``small_image``: per image in order, the file does not
     exist, cannot be opened, or is under ``--min-image-side`` pixels in width or height (only the
     header is read, for the size).
A row that cannot become a record is counted under its own reason (``UNCONVERTIBLE``: an unknown shape
before the rules, the rest after them), never dropped silently; ``--strict`` raises ``RecordError`` for
it instead. Kept rows are written by ``records.write_records`` (image paths resolved; relative to the
output's folder when inside it), so ``load_records`` and ``SFTDataModule`` read them; a summary (rows,
kept, dropped per reason, a few example rows per reason) is printed and written to
``<output stem>.summary.json``.

    python -m pebr_lit.data.warmup_filter --input sft.json --output data/sft.jsonl --image-root images/

Exit status: 0 on success, 1 on a data error (an unreadable input file; an unconvertible row under
``--strict``), 2 on a usage error.

Left out on purpose: reading the row shapes (``data.conversations``), record validation (``data.records``),
deduplicating questions by content, and any rule the authors' script does not have beyond the unconvertible rows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pebr_lit.data.conversations import REASONS, Sample, Unconvertible, read_sample, record_fields
from pebr_lit.data.images import normalise_ref
from pebr_lit.data.records import Record, problem_and_fix, record_from_dict, write_records
from pebr_lit.data.sources import RecordError, read_rows

#: The authors' reflective phrase (their only one).
DEFAULT_PHRASES = ("let me rethink it",)

#: The filter rules, in the order they are checked.
RULES = {
    "rethink": "reflective phrase in an assistant turn",
    "missing_image": "an image file does not exist",
    "unreadable_image": "an image cannot be opened",
    "small_image": "an image is under --min-image-side pixels wide or high",
}
#: Rows that cannot become a record; ``--strict`` makes each an error.
UNCONVERTIBLE = {
    **REASONS,
    "text_only": "no image (a record needs one)",
    "invalid_row": "the record built from the row does not validate",
    "duplicate_qid": "qid already used by an earlier kept row",
}


@dataclass(frozen=True)
class Drop:
    """Why one row was not kept: a ``RULES`` or ``UNCONVERTIBLE`` key, where, and what was found."""

    reason: str
    source: str
    problem: str
    field: str | None = None
    fix: str = ""


def image_problem(ref: str | bytes | Image.Image, min_side: int) -> tuple[str, str] | None:
    """``(reason, problem)`` when a normal-form image reference fails a rule, else None (only its header is read)."""
    if isinstance(ref, str) and not os.path.exists(ref):
        return "missing_image", f"no such file: {ref}"
    try:
        if isinstance(ref, Image.Image):
            width, height = ref.size
        else:
            with Image.open(ref if isinstance(ref, str) else io.BytesIO(ref)) as image:
                width, height = image.size
    # PIL raises OSError subclasses for bad data, SyntaxError/ValueError from some plugins.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        what = ref if isinstance(ref, str) else f"{len(ref)} bytes"
        return "unreadable_image", f"cannot open {what} ({type(e).__name__}: {e})"
    if width < min_side or height < min_side:
        return "small_image", f"{width}x{height} px is under {min_side} px"
    return None


def default_qid(source: str) -> str:
    """ "<file stem>-<row>" for a row source "<file>:row <n>"."""
    where, _, row = source.rpartition(":row ")
    return f"{Path(where).stem}-{row}" if where else source


class WarmupFilter:
    """The rules and their settings; ``check`` judges one row, ``run`` a stream of rows.

    Args:
        phrases: Reflective phrases; an assistant text holding one (any case) drops the row; empty = no rule.
        min_image_side: Smallest width and height in pixels an image may have (the authors: 28; 0 = no rule).
        strict: Raise ``RecordError`` for an unconvertible row instead of counting it.
    """

    def __init__(self, phrases: Sequence[str] = DEFAULT_PHRASES, min_image_side: int = 28, strict: bool = False):
        if min_image_side < 0:
            raise ValueError(f"WarmupFilter.min_image_side={min_image_side}: must be >= 0 pixels. Use e.g. 28.")
        if any(not p.strip() for p in phrases):
            raise ValueError(
                f"WarmupFilter.phrases={list(phrases)!r}: an empty phrase matches every row. Keep non-empty phrases."
            )
        self.phrases = tuple(p.lower() for p in phrases)
        self.min_image_side = min_image_side
        self.strict = strict

    def _drop(self, reason: str, source: str, problem: str, fix: str, field: str | None) -> Drop:
        if self.strict and reason in UNCONVERTIBLE:
            raise RecordError(source, problem, fix, field)
        return Drop(reason, source, problem, field, fix)

    def _rethink(self, sample: Sample) -> tuple[str, str] | None:
        """``(field, phrase)`` of the first assistant text holding a phrase (lower-cased, as the authors)."""
        turns = [i for i, role in enumerate(sample.roles) if role == "assistant"]
        for k, text in enumerate(sample.assistant):
            lowered = text.lower()
            for phrase in self.phrases:
                if phrase in lowered:
                    return ("response" if sample.is_record else f"messages[{turns[k]}].content"), phrase
        return None

    def check(self, row: Any, source: str, image_root: str | Path | None) -> Record | Drop:
        """The row as a record, or why it is dropped; raises ``RecordError`` only under ``strict``."""
        try:
            sample = read_sample(row)
        except Unconvertible as e:
            return self._drop(e.reason, source, e.problem, e.fix, e.field)
        found = self._rethink(sample)
        if found is not None:
            return Drop("rethink", source, f"assistant text holds {found[1]!r}", found[0])
        root = Path(os.path.abspath(image_root)) if image_root is not None else None
        images = []
        for i, raw in enumerate(sample.images):
            try:
                images.append(normalise_ref(raw, root))
            except ValueError as e:
                return self._drop("invalid_row", source, *problem_and_fix(e, "Fix the reference"), f"images[{i}]")
            failed = image_problem(images[-1], self.min_image_side)
            if failed is not None:
                return Drop(failed[0], source, failed[1], f"images[{i}]")
        try:
            fields = record_fields(sample, default_qid(source), images)
            return record_from_dict(fields, source)
        except Unconvertible as e:
            return self._drop(e.reason, source, e.problem, e.fix, e.field)
        except RecordError as e:
            # Text-only is read off the validator's error: once records accept rows without images, they are kept.
            reason = "text_only" if e.field == "images" and not images else "invalid_row"
            return self._drop(reason, source, e.problem, e.fix, sample.where(e.field))

    def run(self, rows: Iterable[tuple[str, Any, str | Path | None]]) -> tuple[list[Record], list[Drop]]:
        """Judge ``(source, row, image_root)`` triples in order: ``(kept records, drops)``, one entry per row."""
        kept: list[Record] = []
        drops: list[Drop] = []
        first_seen: dict[str, str] = {}
        for source, row, image_root in rows:
            result = self.check(row, source, image_root)
            if isinstance(result, Record) and result.qid in first_seen:
                problem = f"duplicate qid {result.qid!r} (first at {first_seen[result.qid]})"
                result = self._drop("duplicate_qid", source, problem, "Give every row a unique qid or id", "qid")
            if isinstance(result, Drop):
                drops.append(result)
            else:
                first_seen[result.qid] = source
                kept.append(result)
        return kept, drops


def summarize(rows: int, kept: int, drops: Sequence[Drop], examples: int = 3) -> dict[str, Any]:
    """Counts per reason (every reason, zeros included) and the first ``examples`` drops of each."""
    by_reason = {reason: 0 for reason in (*RULES, *UNCONVERTIBLE)}
    shown: dict[str, list[dict[str, Any]]] = {}
    for drop in drops:
        by_reason[drop.reason] += 1
        if len(shown.setdefault(drop.reason, [])) < examples:
            shown[drop.reason].append({k: v for k, v in asdict(drop).items() if k != "reason" and (v or k == "field")})
    return {"rows": rows, "kept": kept, "dropped": len(drops), "dropped_by_reason": by_reason, "examples": shown}


def summary_path(output: str | Path) -> Path:
    """Where the summary of ``output`` goes: ``<output stem>.summary.json`` beside it."""
    output = Path(output)
    return output.with_name(f"{output.stem}.summary.json")


def _rows(inputs: Sequence[Path], image_root: str | None) -> Iterable[tuple[str, Any, str | Path | None]]:
    for path in inputs:
        root = image_root if image_root is not None else (path if path.is_dir() else path.parent)
        rows = read_rows(path, None, None)
        try:
            for source, row in rows:
                yield source, row, root
        finally:
            rows.close()


def filter_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    rule: WarmupFilter | None = None,
    image_root: str | Path | None = None,
    examples: int = 3,
    progress: bool = False,
) -> dict[str, Any]:
    """Filter the rows of ``inputs``, write the kept records to ``output`` and the summary beside it; return it.

    rule: the filter (default: the authors' settings). image_root: folder relative image paths start from
    (default: each input's folder). examples: drops shown per reason. progress: a tqdm bar on stderr.
    Raises ``RecordError`` for an unreadable input, or an unconvertible row under ``rule.strict``; then
    nothing is written.
    """
    from tqdm.auto import tqdm

    rule = rule or WarmupFilter()
    paths, output = [Path(p).expanduser() for p in inputs], Path(output).expanduser()
    rows = tqdm(_rows(paths, image_root), desc="warmup filter", unit="row", disable=None if progress else True)
    try:
        kept, drops = rule.run(rows)
    finally:
        rows.close()
    write_records(kept, output)
    summary = {
        "inputs": [str(p) for p in paths],
        "output": str(output),
        "image_root": None if image_root is None else str(image_root),
        "rethink_phrases": list(rule.phrases),
        "min_image_side": rule.min_image_side,
        "strict": rule.strict,
        **summarize(len(kept) + len(drops), len(kept), drops, examples),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    summary_path(output).write_text(text, encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI: filter, write the records and the summary, print the counts; 0 = done, 1 = data error, 2 = usage."""
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.data.warmup_filter", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, nargs="+", metavar="PATH", help="rows: .json list, .jsonl, .parquet or a folder"
    )
    parser.add_argument(
        "--output", required=True, metavar="PATH", help="record JSONL to write (the summary goes beside it)"
    )
    parser.add_argument(
        "--image-root",
        "--image_root",
        default=None,
        metavar="DIR",
        help="folder relative image paths start from (default: each input's)",
    )
    parser.add_argument(
        "--rethink-phrases",
        nargs="*",
        default=list(DEFAULT_PHRASES),
        metavar="PHRASE",
        help="reflective phrases, any case (default: %(default)s; none = no rethink rule)",
    )
    parser.add_argument(
        "--min-image-side", type=int, default=28, metavar="PX", help="smallest image width/height in px (default 28)"
    )
    parser.add_argument("--strict", action="store_true", help="stop with an error at the first unconvertible row")
    parser.add_argument("--examples", type=int, default=3, metavar="N", help="example rows kept per reason (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = parser.parse_args(argv)
    output = Path(a.output).expanduser()
    for path in map(Path, a.input):
        if not path.expanduser().exists():
            parser.error(f"--input {path}: no such file or directory")
        if path.expanduser().resolve() in (output.resolve(), summary_path(output).resolve()):
            parser.error(f"--output {output}: it or its summary would overwrite the input {path}")
    if a.examples < 0:
        parser.error(f"--examples {a.examples}: give a count >= 0")
    try:
        rule = WarmupFilter(a.rethink_phrases, a.min_image_side, a.strict)
    except ValueError as e:
        parser.error(str(e))
    try:
        summary = filter_files(a.input, output, rule, a.image_root, a.examples, progress=not a.no_progress)
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"warmup filter: {summary['rows']} rows read, {summary['kept']} kept, {summary['dropped']} dropped -> {output}"
    )
    for reason, count in summary["dropped_by_reason"].items():
        if count or reason in RULES:  # the authors' rules always, to compare with their script's counts
            shown = summary["examples"].get(reason)
            example = f"  e.g. {shown[0]['source']}" if shown else ""
            print(f"  {reason:<22}{count:>8}  {RULES.get(reason) or UNCONVERTIBLE[reason]}{example}")
    print(f"summary: {summary_path(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
