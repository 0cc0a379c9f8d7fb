"""ResumableCSVLogger: a resumed run continues metrics.csv, each step once, redone rows kept aside, never deleted."""

from __future__ import annotations

import csv

import pytest

from pebr_lit.resume.csv_log import ResumableCSVLogger


def _run(save_dir, steps, key="train/loss", offset=0.0):
    logger = ResumableCSVLogger(str(save_dir), name="stage", version="")
    for step in steps:
        logger.log_metrics({key: step + offset}, step=step)
    return logger


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_run_appends_and_moves_the_redone_steps_aside(tmp_path):
    _run(tmp_path, range(5))  # killed after step 4's row; its last checkpoint is at step 3
    metrics = tmp_path / "stage" / "metrics.csv"
    assert [r["step"] for r in _rows(metrics)] == ["0", "1", "2", "3", "4"]  # flushed every step

    with pytest.warns(UserWarning, match=r"2 rows at steps >= 3 .* moved to .*metrics.superseded-1.csv"):
        _run(tmp_path, range(3, 6), offset=0.5)
    rows = _rows(metrics)
    assert [r["step"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert [float(r["train/loss"]) for r in rows] == [0, 1, 2, 3.5, 4.5, 5.5]  # the resumed run's values win
    assert [r["step"] for r in _rows(metrics.with_name("metrics.superseded-1.csv"))] == ["3", "4"]


def test_a_fresh_run_into_a_used_directory_keeps_the_old_log_aside(tmp_path):
    _run(tmp_path, range(3))
    with pytest.warns(UserWarning, match="3 rows at steps >= 0"):
        _run(tmp_path, range(2), offset=10)
    metrics = tmp_path / "stage" / "metrics.csv"
    assert [float(r["train/loss"]) for r in _rows(metrics)] == [10, 11]
    assert len(_rows(metrics.with_name("metrics.superseded-1.csv"))) == 3


def test_a_new_metric_widens_the_header_and_keeps_every_row(tmp_path):
    _run(tmp_path, range(2))
    _run(tmp_path, range(2, 4), key="val/accuracy")
    rows = _rows(tmp_path / "stage" / "metrics.csv")
    assert [(r["step"], r["train/loss"], r["val/accuracy"]) for r in rows] == [
        ("0", "0.0", ""),
        ("1", "1.0", ""),
        ("2", "", "2.0"),
        ("3", "", "3.0"),
    ]


def test_steps_without_a_row_before_the_resume_are_named(tmp_path):
    logger = ResumableCSVLogger(str(tmp_path), name="stage", version="", flush_logs_every_n_steps=100)
    for step in range(4):
        logger.log_metrics({"train/loss": float(step)}, step=step)
    logger.save()
    rows = _rows(tmp_path / "stage" / "metrics.csv")
    with open(tmp_path / "stage" / "metrics.csv", "w", newline="") as f:  # steps 2 and 3 never reached the disk
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:2])
    with pytest.warns(UserWarning, match=r"no train row for steps \[2, 3\]"):
        _run(tmp_path, [4])


def test_a_torn_last_line_is_cut_before_appending(tmp_path):
    _run(tmp_path, range(2))
    metrics = tmp_path / "stage" / "metrics.csv"
    with open(metrics, "a") as f:
        f.write("0,2,2.")  # a kill inside the write of step 2's row
    with pytest.warns(UserWarning, match="cut a torn last line"):
        _run(tmp_path, range(2, 4))
    assert [(r["step"], r["train/loss"]) for r in _rows(metrics)] == [
        ("0", "0.0"),
        ("1", "1.0"),
        ("2", "2.0"),
        ("3", "3.0"),
    ]
