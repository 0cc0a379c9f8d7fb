"""Command line: check record files before a run, listing every bad row, as the DataModules do at set-up.

    python -m pebr_lit.data.validate FILE... [--image-root DIR] [--allow-outside-root] [--text-only keep|skip|error]
        [--min-side 28] [--min-pixels N] [--max-pixels N] [--no-images] [--report out.jsonl]

It runs the same pass (``data.validation``) over all files together (a qid repeated across them is a
duplicate), prints one line of counts and the first ``validation.SHOWN`` problems, and writes every problem
to ``--report`` (default ``<first file's stem>.bad_records.jsonl`` beside it) when there are any.
``--text-only skip`` counts text-only rows as good (they are left out at training, not bad).
Exit status: 0 when every row is good, 1 when some are not (or a file cannot be read), 2 on a usage error.

Left out on purpose: fixing or rewriting files (``data.warmup_filter`` filters the authors' SFT rows).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pebr_lit.data.image_checks import MIN_SIDE
from pebr_lit.data.text_only import TEXT_ONLY_DEFAULT, TextOnly
from pebr_lit.data.validation import RecordChecks, problems_message, validate_files, write_report


def default_report(first: str | Path) -> Path:
    """``<stem>.bad_records.jsonl`` beside the first file (inside it, for a folder)."""
    first = Path(first)
    return first / "bad_records.jsonl" if first.is_dir() else first.with_name(f"{first.stem}.bad_records.jsonl")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.data.validate", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="record files or folders (.jsonl, .json, .parquet, datasets)")
    parser.add_argument("--image-root", default=None, help="folder relative image paths start from and stay in")
    parser.add_argument("--allow-outside-root", action="store_true", help="accept image paths outside the root")
    parser.add_argument(
        "--text-only",
        choices=("keep", "skip", "error"),
        default=TEXT_ONLY_DEFAULT,
        help=f"rows with images: [] (default {TEXT_ONLY_DEFAULT}; error counts them as bad)",
    )
    parser.add_argument("--min-side", type=int, default=MIN_SIDE, help=f"shortest image side, px (default {MIN_SIDE})")
    parser.add_argument("--min-pixels", type=int, default=None, help="smallest image area allowed (default none)")
    parser.add_argument("--max-pixels", type=int, default=None, help="largest image area allowed (default none)")
    parser.add_argument("--no-images", action="store_true", help="check the rows only, not the image files")
    parser.add_argument("--report", default=None, help="JSONL list of every problem (default beside the first file)")
    args = parser.parse_args(argv)
    if args.min_side < 0 or any(v is not None and v < 1 for v in (args.min_pixels, args.max_pixels)):
        parser.error("--min-side must be >= 0 and --min-pixels/--max-pixels >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    text_only: TextOnly = args.text_only
    checks = RecordChecks(
        image_root=args.image_root,
        allow_text_only=text_only != "error",
        allow_outside_root=args.allow_outside_root,
        check_images=not args.no_images,
        min_side=args.min_side,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    validation = validate_files(args.files, checks, progress=True)
    if not validation.problems:
        print(f"{len(validation.records)} of {validation.rows} rows good in {', '.join(args.files)}")
        return 0
    report = write_report(validation, args.report or default_report(args.files[0]))
    print(problems_message(validation, report, "Fix them, or train with data.init_args.on_bad_record: skip"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
