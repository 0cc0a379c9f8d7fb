"""Difficulty tiers: per-question pass rates -> Easy / Medium / Hard record files and a summary.

A question whose sampled answers are all correct is Easy (stage 1, perception RL), some correct is
Medium (stage 2, reasoning RL), none correct is Hard (unused by the paper). The thresholds are
configurable: Easy is ``pass_rate >= easy_min_pass_rate``, Hard is ``pass_rate <= hard_max_pass_rate``,
Medium is everything between. ``split_tiers`` and ``summarize`` are pure; ``write_tiers`` writes
``easy.jsonl``/``medium.jsonl``/``hard.jsonl`` (full records; image paths relative to the new folder)
and ``summary.json``/``summary.md`` (counts and the pass-rate histogram). Text-only rows are kept,
skipped or refused as ``--text-only`` says: give it the value the sampling run's ``data.text_only`` had.

    python -m pebr_lit.data.tiers --samples runs/demo/sampling/samples.jsonl \\
        --records runs/demo/data/rl.jsonl --out runs/demo/tiers

Left out on purpose: sampling and the results file format (``callbacks.sampling_writer``,
``data.samples``) and loading a tier for training (the stage DataModules read the tier files).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, get_args

from pebr_lit.data.records import Record, write_records
from pebr_lit.data.samples import load_samples
from pebr_lit.data.text_only import TEXT_ONLY_DEFAULT, TextOnly, check_text_only, load_split
from pebr_lit.data.validation import RecordChecks

TIERS = ("easy", "medium", "hard")


def check_thresholds(easy_min_pass_rate: float = 1.0, hard_max_pass_rate: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``0 <= hard_max_pass_rate < easy_min_pass_rate <= 1`` (tiers must not overlap)."""
    if not (0.0 <= hard_max_pass_rate < easy_min_pass_rate <= 1.0):
        raise ValueError(
            f"tier thresholds need 0 <= hard_max_pass_rate < easy_min_pass_rate <= 1, got "
            f"hard_max_pass_rate={hard_max_pass_rate}, easy_min_pass_rate={easy_min_pass_rate}."
        )


def tier_of(pass_rate: float, easy_min_pass_rate: float = 1.0, hard_max_pass_rate: float = 0.0) -> str:
    """ "easy", "medium" or "hard" for one question's pass rate (fraction of correct answers).

    A pass rate computed as ``k / n`` compares exactly with a threshold written as the same fraction
    (7/10 and 0.7 round to the same double), so "7 of 10 correct" meets ``easy_min_pass_rate: 0.7``.
    """
    check_thresholds(easy_min_pass_rate, hard_max_pass_rate)
    if not (isinstance(pass_rate, (int, float)) and math.isfinite(pass_rate) and 0.0 <= pass_rate <= 1.0):
        raise ValueError(f"pass_rate must be a number in [0, 1], got {pass_rate!r}.")
    if pass_rate >= easy_min_pass_rate:
        return "easy"
    if pass_rate <= hard_max_pass_rate:
        return "hard"
    return "medium"


def split_tiers(
    records: Sequence[Record],
    samples: Mapping[str, Mapping[str, Any]],
    easy_min_pass_rate: float = 1.0,
    hard_max_pass_rate: float = 0.0,
    samples_name: str = "samples",
) -> dict[str, list[Record]]:
    """Records by tier, in input order. Every record needs exactly one sampling row and every row a record.

    samples: rows by qid with integer ``n`` and ``n_correct`` (``data.samples.load_samples``).
    samples_name: what to call the results in error messages (usually their path).
    """
    qids = {r.qid for r in records}
    missing = [r.qid for r in records if r.qid not in samples]
    if missing:
        raise ValueError(
            f"{samples_name}: sampling is incomplete, {len(missing)} of {len(records)} questions have "
            f"no row (e.g. {missing[:3]}). Rerun the sampling command; it resumes where it stopped."
        )
    unknown = [qid for qid in samples if qid not in qids]
    if unknown:
        raise ValueError(
            f"{samples_name}: {len(unknown)} sampled qids are not in the records (e.g. {unknown[:3]}). "
            "Pass the record files that were sampled."
        )
    tiers: dict[str, list[Record]] = {name: [] for name in TIERS}
    for record in records:
        row = samples[record.qid]
        tiers[tier_of(row["n_correct"] / row["n"], easy_min_pass_rate, hard_max_pass_rate)].append(record)
    return tiers


def summarize(samples: Mapping[str, Mapping[str, Any]], tiers: Mapping[str, Sequence[Record]]) -> dict[str, Any]:
    """Tier counts and shares, the mean pass rate and a histogram of ``n_correct/n`` (by pass rate)."""
    total = sum(len(v) for v in tiers.values())
    rates = {qid: Fraction(row["n_correct"], row["n"]) for qid, row in samples.items()}
    hist: dict[tuple[Fraction, str], int] = {}
    for row in samples.values():
        key = (rates[row["qid"]], f"{row['n_correct']}/{row['n']}")
        hist[key] = hist.get(key, 0) + 1
    return {
        "questions": total,
        "counts": {name: len(tiers[name]) for name in TIERS},
        "shares": {name: len(tiers[name]) / total if total else 0.0 for name in TIERS},
        "mean_pass_rate": float(sum(rates.values()) / len(rates)) if rates else 0.0,
        "histogram": {label: count for (_, label), count in sorted(hist.items())},
    }


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary ``write_tiers`` returns as a short markdown report (tier table, histogram with bars)."""
    lines = [
        "# Difficulty tiers",
        "",
        f"{summary['questions']} questions, mean pass rate "
        f"{summary['mean_pass_rate']:.3f} (easy: pass rate >= {summary['easy_min_pass_rate']}, "
        f"hard: <= {summary['hard_max_pass_rate']}).",
        "",
        "| tier | questions | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {summary['counts'][name]} | {summary['shares'][name]:.1%} |" for name in TIERS]
    lines += ["", "| correct | questions | |", "|---|---:|---|"]
    peak = max(summary["histogram"].values(), default=1)
    lines += [
        f"| {label} | {count} | {'#' * max(1, round(30 * count / peak))} |"
        for label, count in summary["histogram"].items()
    ]
    return "\n".join(lines) + "\n"


def _relocated(record: Record, out_dir: Path) -> Record:
    """The record with absolute image paths made relative to ``out_dir`` (``..`` allowed), so the run folder
    can move."""
    images = tuple(
        os.path.relpath(ref, out_dir) if isinstance(ref, str) and os.path.isabs(ref) else ref for ref in record.images
    )
    return replace(record, images=images)


def write_tiers(
    samples_path: str | Path,
    record_files: Sequence[str | Path],
    out_dir: str | Path,
    easy_min_pass_rate: float = 1.0,
    hard_max_pass_rate: float = 0.0,
    image_root: str | None = None,
    text_only: TextOnly = TEXT_ONLY_DEFAULT,
    allow_outside_root: bool = False,
) -> dict[str, Any]:
    """Write the tier files and summaries into ``out_dir``; return the summary. The records go through the
    validation pass (``data.validation``); ``allow_outside_root`` accepts image paths outside the image root
    (a tier file's, which point back at the records it came from)."""
    check_thresholds(easy_min_pass_rate, hard_max_pass_rate)
    checks = RecordChecks(allow_outside_root=allow_outside_root)
    files = [str(f) for f in record_files]
    loaded = load_split(files, image_root, check_text_only("write_tiers", text_only), checks=checks)
    records = loaded.records
    samples = load_samples(samples_path)  # the results file plus any unmerged shards
    tiers = split_tiers(records, samples, easy_min_pass_rate, hard_max_pass_rate, str(samples_path))
    out = Path(os.path.abspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    for name in TIERS:
        write_records([_relocated(r, out) for r in tiers[name]], out / f"{name}.jsonl")
    summary = {
        "samples": str(samples_path),
        "records": [str(f) for f in record_files],
        "easy_min_pass_rate": easy_min_pass_rate,
        "hard_max_pass_rate": hard_max_pass_rate,
        "text_only": {"option": text_only, "rows": len(loaded.text_only)},
        **summarize(samples, tiers),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    """CLI: write the tier files and print the tier counts."""
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.data.tiers", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", required=True, help="sampling results (JSONL written by SamplingWriter)")
    parser.add_argument("--records", required=True, nargs="+", help="the record file(s) that were sampled")
    parser.add_argument("--out", required=True, help="folder for easy/medium/hard.jsonl and summary.json/.md")
    parser.add_argument("--easy-min-pass-rate", type=float, default=1.0, help="Easy: pass rate >= this (default 1.0)")
    parser.add_argument("--hard-max-pass-rate", type=float, default=0.0, help="Hard: pass rate <= this (default 0.0)")
    parser.add_argument(
        "--image-root", default=None, help="folder relative image paths start from (default: each file's)"
    )
    parser.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="accept image paths outside the image root (re-tiering a tier file: its paths point back at the data)",
    )
    parser.add_argument(
        "--text-only",
        default=TEXT_ONLY_DEFAULT,
        choices=get_args(TextOnly),
        help=f"rows with images: [] (default {TEXT_ONLY_DEFAULT}; as the sampling run's data.text_only)",
    )
    args = parser.parse_args(argv)
    try:
        summary = write_tiers(
            args.samples,
            args.records,
            args.out,
            args.easy_min_pass_rate,
            args.hard_max_pass_rate,
            args.image_root,
            args.text_only,
            args.allow_outside_root,
        )
    except ValueError as e:  # RecordError included: the message says where and what to do
        raise SystemExit(f"error: {e}") from None
    counts = " ".join(f"{name}={summary['counts'][name]}" for name in TIERS)
    print(
        f"tiers: {summary['questions']} questions -> {args.out} | {counts} | "
        f"mean pass rate {summary['mean_pass_rate']:.3f}"
    )


if __name__ == "__main__":
    main()
