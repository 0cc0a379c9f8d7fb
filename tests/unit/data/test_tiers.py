"""Difficulty tiers: every threshold boundary, completeness checks, summary, and the tier files on disk."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.records import (
    Record,
    load_records,
    record_from_dict,
    write_records,
)
from pebr_lit.data.samples import make_row
from pebr_lit.data.tiers import main, split_tiers, summarize, tier_of, write_tiers
from pebr_lit.data.validation import RecordChecks, validate_files


# ------------------------------------------------------------------------------------ tier_of
@pytest.mark.parametrize(
    ("n_correct", "n", "tier"),
    [
        (8, 8, "easy"),
        (7, 8, "medium"),
        (1, 8, "medium"),
        (0, 8, "hard"),
        (1, 1, "easy"),
        (0, 1, "hard"),
        (1, 2, "medium"),
    ],
)
def test_default_thresholds_are_all_some_none(n_correct, n, tier):
    assert tier_of(n_correct / n) == tier


@pytest.mark.parametrize(
    ("pass_rate", "tier"),
    [
        (0.75, "easy"),
        (math.nextafter(0.75, 0.0), "medium"),
        (0.25, "hard"),
        (math.nextafter(0.25, 1.0), "medium"),
        (1.0, "easy"),
        (0.0, "hard"),
        (0.5, "medium"),
    ],
)
def test_custom_thresholds_are_inclusive_at_both_ends(pass_rate, tier):
    assert tier_of(pass_rate, easy_min_pass_rate=0.75, hard_max_pass_rate=0.25) == tier


def test_fraction_meets_a_threshold_written_as_the_same_decimal():
    # 7/10 and 0.7 are the same double; 3/10 and 0.3 too: "7 of 10 correct" is Easy at 0.7, 3 of 10 Hard at 0.3.
    assert tier_of(7 / 10, easy_min_pass_rate=0.7, hard_max_pass_rate=0.3) == "easy"
    assert tier_of(3 / 10, easy_min_pass_rate=0.7, hard_max_pass_rate=0.3) == "hard"
    assert tier_of(6 / 10, easy_min_pass_rate=0.7, hard_max_pass_rate=0.3) == "medium"


def test_thresholds_next_to_each_other_leave_medium_empty_only_in_between():
    # hard <= 0.5 < easy = nextafter(0.5): any k/n is Easy or Hard.
    easy = math.nextafter(0.5, 1.0)
    assert [tier_of(k / 4, easy, 0.5) for k in range(5)] == ["hard", "hard", "hard", "easy", "easy"]


@pytest.mark.parametrize(("easy", "hard"), [(0.5, 0.5), (0.4, 0.6), (1.1, 0.0), (1.0, -0.1), (0.0, 0.0)])
def test_overlapping_or_out_of_range_thresholds_are_rejected(easy, hard):
    with pytest.raises(ValueError, match="hard_max_pass_rate < easy_min_pass_rate"):
        tier_of(0.5, easy_min_pass_rate=easy, hard_max_pass_rate=hard)


@pytest.mark.parametrize("bad", [-0.125, 1.125, float("nan"), float("inf"), "0.5", None])
def test_pass_rate_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match="pass_rate"):
        tier_of(bad)


# ---------------------------------------------------------------------------------- split_tiers
def _record(qid: str, image: str = "/img/x.png"):
    return record_from_dict({"qid": qid, "problem": "How many?", "answer": "2", "images": [image]})


def _samples(counts: dict[str, tuple[int, int]]) -> dict[str, dict]:
    return {qid: make_row(qid, [1.0] * k + [0.0] * (n - k)) for qid, (k, n) in counts.items()}


def test_split_keeps_input_order_within_each_tier():
    records = [_record(q) for q in ("a", "b", "c", "d", "e")]
    samples = _samples({"e": (8, 8), "d": (0, 8), "c": (3, 8), "b": (8, 8), "a": (1, 8)})
    tiers = split_tiers(records, samples)
    assert {k: [r.qid for r in v] for k, v in tiers.items()} == {
        "easy": ["b", "e"],
        "medium": ["a", "c"],
        "hard": ["d"],
    }


def test_missing_sampling_rows_are_an_error_naming_them():
    records = [_record(q) for q in ("a", "b", "c")]
    with pytest.raises(ValueError, match=r"samples.jsonl: sampling is incomplete, 2 of 3 .*'b', 'c'.*Rerun"):
        split_tiers(records, _samples({"a": (1, 2)}), samples_name="samples.jsonl")


def test_sampled_qids_without_a_record_are_an_error():
    with pytest.raises(ValueError, match=r"1 sampled qids are not in the records \(e.g. \['zz'\]\)"):
        split_tiers([_record("a")], _samples({"a": (1, 2), "zz": (0, 2)}))


def test_summary_counts_histogram_and_mean_by_hand():
    records = [_record(q) for q in ("a", "b", "c", "d")]
    samples = _samples({"a": (2, 2), "b": (1, 2), "c": (0, 2), "d": (1, 2)})
    s = summarize(samples, split_tiers(records, samples))
    assert s["counts"] == {"easy": 1, "medium": 2, "hard": 1}
    assert s["shares"] == {"easy": 0.25, "medium": 0.5, "hard": 0.25}
    assert s["mean_pass_rate"] == 0.5  # (1 + 0.5 + 0 + 0.5) / 4
    assert list(s["histogram"].items()) == [("0/2", 1), ("1/2", 2), ("2/2", 1)]  # by pass rate, low to high


# ------------------------------------------------------------------------------------ on disk
@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """tmp/data/rl.jsonl with five records, each with its own PNG under tmp/data/images."""
    (tmp_path / "data" / "images").mkdir(parents=True)
    rows = []
    for i in range(5):
        Image.new("RGB", (28, 28), (40 * i, 0, 0)).save(tmp_path / "data" / "images" / f"q{i}.png")
        rows.append(
            {
                "qid": f"q{i}",
                "problem": f"Question {i}?",
                "answer": str(i),
                "images": [f"images/q{i}.png"],
                "key_words": ["red"],
                "meta": {"kind": "count"},
            }
        )
    return write_records(rows, tmp_path / "data" / "rl.jsonl")


def _write_samples(path: Path, counts: dict[str, tuple[int, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in _samples(counts).values()))
    return path


def test_write_tiers_files_keep_full_records_and_valid_image_paths(pool, tmp_path):
    samples = _write_samples(
        tmp_path / "sampling" / "samples.jsonl", {"q0": (4, 4), "q1": (2, 4), "q2": (0, 4), "q3": (4, 4), "q4": (3, 4)}
    )
    summary = write_tiers(samples, [pool], tmp_path / "tiers")
    assert summary["counts"] == {"easy": 2, "medium": 2, "hard": 1}
    out = tmp_path / "tiers"
    easy = load_records(out / "easy.jsonl", allow_outside_root=True)  # the images stay in the records' folder
    assert [r.qid for r in easy] == ["q0", "q3"]
    checks = RecordChecks(allow_outside_root=True)
    assert validate_files([out / "easy.jsonl"], checks).records == easy  # the paths resolve from the new folder
    first = json.loads((out / "easy.jsonl").read_text().splitlines()[0])
    assert first["images"] == ["../data/images/q0.png"]  # relative: the run folder can move as a whole
    assert first["key_words"] == ["red"] and first["meta"] == {"kind": "count"} and first["answer"] == "0"
    assert [r.qid for r in load_records(out / "medium.jsonl", allow_outside_root=True)] == ["q1", "q4"]
    assert json.loads((out / "summary.json").read_text())["histogram"] == {"0/4": 1, "2/4": 1, "3/4": 1, "4/4": 2}
    md = (out / "summary.md").read_text()
    assert "| easy | 2 | 40.0% |" in md and "| 4/4 | 2 |" in md


def test_cli_reports_incomplete_sampling_without_a_traceback(pool, tmp_path, capsys):
    samples = _write_samples(tmp_path / "samples.jsonl", {"q0": (1, 2)})
    with pytest.raises(SystemExit, match="4 of 5 questions have no row"):
        main(["--samples", str(samples), "--records", str(pool), "--out", str(tmp_path / "tiers")])
    assert not (tmp_path / "tiers" / "easy.jsonl").exists()


def test_cli_writes_tiers(pool, tmp_path, capsys):
    samples = _write_samples(tmp_path / "samples.jsonl", {f"q{i}": (i % 3, 2) for i in range(5)})
    main(
        [
            "--samples",
            str(samples),
            "--records",
            str(pool),
            "--out",
            str(tmp_path / "tiers"),
            "--easy-min-pass-rate",
            "0.5",
        ]
    )
    # n_correct 0,1,2,0,1 of 2 with easy >= 0.5: q1,q2,q4 easy; q0,q3 hard; none medium.
    assert "easy=3 medium=0 hard=2" in capsys.readouterr().out


def test_text_only_rows_are_tiered_when_kept_and_left_out_when_skipped(pool, tmp_path):
    text_only = Record("t0", "What is 3 + 4?", "7", ())
    both = write_records([*load_records(pool), text_only], tmp_path / "data" / "mixed.jsonl")
    counts = {f"q{i}": (4, 4) for i in range(5)}
    kept = write_tiers(_write_samples(tmp_path / "kept.jsonl", {**counts, "t0": (0, 4)}), [both], tmp_path / "k")
    assert kept["text_only"] == {"option": "keep", "rows": 1}
    assert [r.qid for r in load_records(tmp_path / "k" / "hard.jsonl", allow_text_only=True)] == ["t0"]
    # skipped at sampling (data.text_only: skip) has no samples row: --text-only skip leaves it out here too
    samples = _write_samples(tmp_path / "skipped.jsonl", counts)
    with pytest.warns(UserWarning, match="skipped 1 text-only"):
        main(["--samples", str(samples), "--records", str(both), "--out", str(tmp_path / "s"), "--text-only", "skip"])
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["text_only"] == {"option": "skip", "rows": 1}
    assert (tmp_path / "s" / "hard.jsonl").read_text() == ""
    with pytest.raises(SystemExit, match="text-only row"):
        main(["--samples", str(samples), "--records", str(both), "--out", str(tmp_path / "e"), "--text-only", "error"])
