"""Report building from a run directory's logs: metrics parsing, summaries, the held-out table and targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pebr_lit.demo.report import (
    build_report,
    eval_scores,
    first_last,
    read_metrics,
    stage_summary,
)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_metrics_skips_blanks_and_keeps_last_value_of_a_relogged_step(tmp_path):
    # A resumed run logs step 1 again: the second value (0.7) must win; blank cells are not values.
    path = write_csv(
        tmp_path / "m.csv",
        ["epoch", "step", "train/a", "val/b"],
        [[0, 0, 0.5, None], [0, 1, 0.6, None], [0, 1, 0.7, None], [0, 1, None, 0.9]],
    )
    m = read_metrics(path)
    assert m["train/a"] == [(0, 0.5), (1, 0.7)]
    assert m["val/b"] == [(1, 0.9)]
    assert "epoch" not in m


def test_read_metrics_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        read_metrics(tmp_path / "nope.csv")


def test_first_last_and_stage_summary():
    points = [(i, float(i)) for i in range(30)]
    # first 10: mean of 0..9 = 4.5; last 10: mean of 20..29 = 24.5
    assert first_last(points) == (4.5, 24.5)
    line = stage_summary({"train/reward/keyword": points, "val/accuracy": [(9, 0.25), (19, 0.5)]})
    assert line == "30 steps, keyword 4.500 -> 24.500, val/accuracy 0.500"


def _run(tmp_path: Path, acc: dict[str, float], keyword: dict[str, float]) -> Path:
    run = tmp_path / "run"
    for name in acc:
        write_csv(
            run / f"eval_{name}" / "test" / "metrics.csv",
            [
                "epoch",
                "step",
                "test/accuracy",
                "test/format_rate",
                "test/reward/keyword",
                "test/clip_similarity",
                "test/reward/clip",
                "test/questions",
            ],
            [[0, 0, acc[name], 1.0, keyword[name], 0.9, 0.95, 400]],
        )
    write_csv(
        run / "stage1" / "metrics.csv",
        ["step", "train/reward/keyword", "train/reward/clip", "train/response_length/mean"],
        [[i, 0.5 + i / 100, 0.8, 100 + i] for i in range(20)],
    )
    write_csv(
        run / "stage2" / "metrics.csv",
        ["step", "train/reward/accuracy", "train/reward/format"],
        [[i, 0.5, 1.0] for i in range(20)],
    )
    (run / "tiers").mkdir()
    (run / "tiers" / "summary.json").write_text(
        json.dumps({"questions": 10, "mean_pass_rate": 0.5, "counts": {"easy": 3, "medium": 5, "hard": 2}})
    )
    return run


def test_report_table_and_targets_come_from_the_logs(tmp_path):
    run = _run(
        tmp_path,
        acc={"sft": 0.60, "stage1": 0.61, "stage2": 0.66, "stage2_only": 0.63},
        keyword={"sft": 0.80, "stage1": 0.85, "stage2": 0.84, "stage2_only": 0.80},
    )
    path = build_report(run)
    text = path.read_text()
    assert eval_scores(run / "eval_stage2")["accuracy"] == 0.66
    assert "| + stage 2 (reasoning) = PeBR | 0.660 | 1.000 | 0.850 |" not in text  # keyword of stage 2 is 0.84
    assert "| + stage 2 (reasoning) = PeBR | 0.660 | 1.000 | 0.840 | 0.900 | 0.950 |" in text
    # 2 SE of the difference: 2 * sqrt(.6*.4/400 + .66*.34/400) = 2 * 0.03390 = 0.0678 -> ±6.8 points
    assert "+6.0 points, unpaired 2 SE ±6.8 (target: at least +5) — met" in text
    assert "| 0.950 | 400 |" in text
    # 2 * sqrt(.63*.37/400 + .66*.34/400) = 2 * sqrt(.4575/400) = 2 * 0.03382 -> ±6.8
    assert "PeBR 0.660 vs stage 2 alone 0.630 (+3.0 points, unpaired 2 SE ±6.8)" in text
    # 2 * sqrt(.8*.2/400 + .85*.15/400) = 2 * 0.02680 = 0.054
    assert "held-out keyword: 0.800 -> 0.850 (+0.050, unpaired 2 SE ±0.054; target: above) — met" in text
    assert "held-out CLIP reward: 0.950 -> 0.950 (+0.000, unpaired 2 SE ±0.031; target: above) — NOT met" in text
    assert "| medium | 5 | stage 2 |" in text
    for png in ("fig4_stage1.png", "fig4_stage2.png"):
        assert (run / "plots" / png).stat().st_size > 1000, png
    assert not (run / "plots" / "fig5_length.png").exists()  # two equal curves at this scale: not drawn
    assert "## Length penalty (Fig. 5): not shown" in text
    assert not (run / "plots" / "sft.png").exists()  # no SFT log in this run: said, not drawn
    assert "_(no data for sft.png)_" in text


def test_report_says_when_a_target_is_missed(tmp_path):
    run = _run(
        tmp_path,
        acc={"sft": 0.60, "stage1": 0.61, "stage2": 0.62, "stage2_only": 0.63},
        keyword={"sft": 0.80, "stage1": 0.79, "stage2": 0.84, "stage2_only": 0.80},
    )
    text = build_report(run).read_text()
    # 2 * sqrt(.6*.4/400 + .62*.38/400) = 2 * 0.03448 -> ±6.9 points
    assert "+2.0 points, unpaired 2 SE ±6.9 (target: at least +5) — NOT met" in text
    assert "0.800 -> 0.790 (-0.010, unpaired 2 SE ±0.057; target: above) — NOT met" in text


def test_report_gives_the_paired_se_when_answer_rows_exist(tmp_path):
    run = _run(
        tmp_path,
        acc={"sft": 0.60, "stage1": 0.61, "stage2": 0.66, "stage2_only": 0.63},
        keyword={"sft": 0.80, "stage1": 0.85, "stage2": 0.84, "stage2_only": 0.80},
    )
    # Per-question accuracy rows (4 answers): SFT means 0.5, 1, 0; stage 2 means 1, 1, 0.25 ->
    # differences 0.5, 0, 0.25, sd 0.25, SE 0.25 / sqrt(3) = 0.1443 -> paired 2 SE ±28.9 points (by hand).
    per_q = {
        "sft": {"q1": [1, 1, 0, 0], "q2": [1, 1, 1, 1], "q3": [0, 0, 0, 0]},
        "stage2": {"q1": [1, 1, 1, 1], "q2": [1, 1, 1, 1], "q3": [1, 0, 0, 0]},
    }
    for name, rows in per_q.items():
        answers = run / f"eval_{name}" / "test" / "answers"
        answers.mkdir(parents=True)
        lines = [json.dumps({"qid": q, "scores": {"accuracy": s}}) for q, s in rows.items()]
        (answers / "test.rank0.jsonl").write_text("\n".join(lines) + "\n")
    text = build_report(run).read_text()
    # the table's figures come from metrics.csv; the paired SE from the rows; the unpaired one stays beside it
    assert "+6.0 points, paired 2 SE ±28.9, unpaired 2 SE ±6.8 (target: at least +5) — met" in text
    # stage-2-only has no rows: unpaired only
    assert "PeBR 0.660 vs stage 2 alone 0.630 (+3.0 points, unpaired 2 SE ±6.8)" in text
