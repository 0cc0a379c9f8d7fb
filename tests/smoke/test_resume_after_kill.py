"""Fault: a GRPO ``cli.py fit`` killed with SIGKILL and resumed with ``--ckpt_path last`` is the uninterrupted run.

Each case runs the tiny model for 6 rollout steps (checkpoints every 2, a validation after step 3) three times:
uninterrupted, killed (at a point the case names), and resumed by the same command. The resumed run must end
at the same global step with bit-identical weights, having sampled the same rollouts for the same questions
(``tests/helpers/resume_runs.StepRecord``), and its ``metrics.csv`` must hold every step's row exactly once, with
the uninterrupted run's values, so the report's curves are the same (``pebr_lit.demo.report.read_metrics``).
Difficulty sampling killed mid-run: ``tests/smoke/test_cli_sampling.py``.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import torch

from pebr_lit.demo.report import read_metrics
from tests.helpers import resume_runs as runs

STEPS = 6
CKPT = Path("checkpoints") / "last.ckpt"

#: Kill conditions on the metrics.csv train rows of a run directory (row i = rollout step i + 1).
KILL_AT = {
    # Row 1 is logged right after step 2's checkpoint is written: killed just after a checkpoint.
    "after_checkpoint": 1,
    # Row 2: step 3 is done, step 4's checkpoint not yet written; the resume redoes step 3.
    "between_checkpoints": 2,
}


@pytest.fixture(scope="module")
def uninterrupted(assets, world, tmp_path_factory):
    """The uninterrupted run of each stage, run once per module on first use."""
    done: dict[str, Path] = {}

    def run(stage: str) -> Path:
        if stage not in done:
            out = tmp_path_factory.mktemp(f"{stage}_straight")
            runs.finish(runs.fit_args(stage, assets, world, out, STEPS), out / "fit.log")
            done[stage] = out
        return done[stage]

    return run


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage,kill", [("stage2", "after_checkpoint"), ("stage2", "between_checkpoints"), ("stage1", "between_checkpoints")]
)
def test_sigkill_then_resume_is_the_uninterrupted_run(assets, world, tmp_path, uninterrupted, stage, kill):
    straight = uninterrupted(stage)
    out, log = tmp_path, tmp_path / "fit.log"
    args = runs.fit_args(stage, assets, world, out, STEPS)
    metrics = out / stage / "metrics.csv"

    runs.kill_when(args, log, lambda: KILL_AT[kill] in runs.train_rows(metrics))
    resumed_from = _load(out / stage / CKPT)["global_step"]
    assert resumed_from in (2, 4), resumed_from  # killed mid-run, after at least one checkpoint
    before = runs.steps(out)
    redone = sorted(s for s in runs.train_rows(metrics) if s >= resumed_from)  # logged after the checkpoint
    runs.finish(args, log)  # the same command: --ckpt_path last
    assert "Restored all states from the checkpoint" in log.read_text()

    # Same global step, bit-identical weights.
    mine, theirs = _load(out / stage / CKPT), _load(straight / stage / CKPT)
    assert mine["global_step"] == theirs["global_step"] == STEPS
    assert mine["state_dict"].keys() == theirs["state_dict"].keys()
    for name, value in theirs["state_dict"].items():
        assert torch.equal(mine["state_dict"][name], value), f"{name} differs from the uninterrupted run"

    # Same questions, same rollouts, step by step (the killed run's steps after its checkpoint are redone).
    after = runs.steps(out)[len(before) :]
    assert after[0]["step"] == resumed_from + 1
    assert [r for r in before if r["step"] <= resumed_from] + after == runs.steps(straight)

    # Every step's row once, with the uninterrupted run's values; the report reads the same curves.
    rows, reference = runs.train_rows(metrics), runs.train_rows(straight / stage / "metrics.csv")
    assert sorted(rows) == list(range(STEPS)) and all(len(r) == 1 for r in rows.values())
    assert rows == reference
    assert read_metrics(metrics) == read_metrics(straight / stage / "metrics.csv")
    # The killed run's rows of the redone steps are kept aside, not deleted.
    aside = [row for path in metrics.parent.glob("metrics.superseded-*.csv") for row in runs.metric_rows(path)]
    assert sorted(int(r["step"]) for r in aside if r.get("train/reward/total")) == redone


@pytest.mark.slow
def test_sigterm_exits_non_zero_and_the_same_command_resumes(assets, world, tmp_path, uninterrupted):
    """A fit stopped by SIGTERM (a scheduler, ``kill``, the demo stopped) must not exit 0: Lightning's bare
    ``SIGTERMException`` did, and the demo driver then took a half-trained SFT for a finished step."""
    straight = uninterrupted("stage2")
    out, log = tmp_path, tmp_path / "fit.log"
    args = runs.fit_args("stage2", assets, world, out, STEPS)
    metrics = out / "stage2" / "metrics.csv"

    rc = runs.kill_when(
        args, log, lambda: KILL_AT["between_checkpoints"] in runs.train_rows(metrics), sig=signal.SIGTERM
    )
    assert rc == 128 + signal.SIGTERM, log.read_text()[-3000:]
    assert "stopped by SIGTERM at global step" in log.read_text()
    assert "--ckpt_path last" in log.read_text()
    assert _load(out / "stage2" / CKPT)["global_step"] < STEPS

    runs.finish(args, log)  # the same command resumes and ends where the uninterrupted run did
    mine, theirs = _load(out / "stage2" / CKPT), _load(straight / "stage2" / CKPT)
    assert mine["global_step"] == theirs["global_step"] == STEPS
    for name, value in theirs["state_dict"].items():
        assert torch.equal(mine["state_dict"][name], value), f"{name} differs from the uninterrupted run"


@pytest.mark.slow
def test_resume_with_another_init_from_is_refused_naming_it(assets, world, tmp_path):
    from cli import main

    first = tmp_path / "first"
    main(runs.fit_args("stage2", assets, world, first, 2))
    start = tmp_path / "start.ckpt"  # the stage-1 checkpoint stage 2 starts from
    shutil.copy(first / "stage2" / CKPT, start)
    stage = tmp_path / "stage"

    def fit(init_from: str, steps: int) -> None:
        main(runs.fit_args("stage2", assets, world, stage, steps, f"--model.init_args.init_from={init_from}"))

    fit(str(start), 2)
    saved = _load(stage / "stage2" / CKPT)["pebr_stage"]
    assert saved["init_from"] == str(start) and len(saved["init_from_sha256"]) == 64

    # The case: resumed with init_from=null, the KL anchor would silently become the base model.
    refused = rf"init_from: saved '{start}', given null \(no init_from\).*init_from={start}"
    with pytest.raises(ValueError, match=refused):
        fit("null", 4)
    # Same path, other bytes (the previous stage was rerun): refused too.
    moved = tmp_path / "moved.ckpt"
    shutil.copy(start, moved)
    shutil.copy(stage / "stage2" / CKPT, start)
    with pytest.raises(ValueError, match=r"init_from: the file .*start\.ckpt' has changed since the stage started"):
        fit(str(start), 4)
    # The same bytes under another path (moved or copied): the stage resumes.
    fit(str(moved), 4)
    assert _load(stage / "stage2" / CKPT)["global_step"] == 4
