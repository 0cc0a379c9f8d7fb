"""The demo end to end, shortened (`python -m pebr_lit.demo --quick`): every step runs, the report comes from
the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pebr_lit.demo.report import eval_scores, read_metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_demo_runs_every_step_and_reports_its_own_numbers(tmp_path):
    run = tmp_path / "runs" / "demo"
    cmd = [sys.executable, "-m", "pebr_lit.demo.driver", "--quick", "--jobs", "2", "--cores", "2"]
    # Interrupted after the tiers (as if stopped there), then continued: the first part is not redone.
    first = subprocess.run([*cmd, "--until", "tiers"], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert not (run / "steps" / "stage1.json").exists()
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo: finished" in done.stdout
    for name in ("assets", "data", "sft", "sample", "tiers"):
        assert f"[done earlier] {name}:" in done.stdout and f"[start] {name}:" not in done.stdout
    steps = {p.stem for p in (run / "steps").glob("*.json")} - {"settings"}
    assert {"sft", "sample", "tiers", "stage1", "stage2", "stage2_only", "report"} <= steps
    report = (run / "report.md").read_text()
    # Every held-out row of the table is this run's evaluation, digit for digit.
    for name, label in (("sft", "warm-up SFT"), ("stage2", "+ stage 2 (reasoning) = PeBR")):
        acc = eval_scores(run / f"eval_{name}")["accuracy"]
        assert f"| {label} | {acc:.3f} |" in report
    tiers = json.loads((run / "tiers" / "summary.json").read_text())
    assert f"| hard | {tiers['counts']['hard']} |" in report
    assert read_metrics(run / "stage1" / "metrics.csv")["train/reward/keyword"]
    for png in ("fig4_stage1.png", "fig4_stage2.png"):
        assert (run / "plots" / png).stat().st_size > 1000
    # A rerun finds everything done and redoes nothing.
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (
        again.returncode == 0 and "[start]" not in again.stdout and again.stdout.count("[done earlier]") == len(steps)
    )
