"""Smoke: checkpoint files through the CLI on the tiny model: early one-line errors, safe loading, ``last``, the lock.

A bad ``init_from``/``ckpt_path``/CLIP directory stops the CLI with one ``error:`` line before any policy is built
(``PolicyWrapper.__init__`` is made to fail the test if reached); a malicious pickle never runs (its marker file is
never created) through ``init_from``, ``--ckpt_path`` or export; a fit resumes from the newest good checkpoint when
``last.ckpt`` is damaged, and a second fit into a locked run directory is refused naming the holder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from cli import main
from pebr_lit.ckpt.atomic_io import AtomicCheckpointIO
from pebr_lit.ckpt.run_lock import RunLock
from pebr_lit.policy.checkpoint import POLICY_PREFIX
from pebr_lit.policy.wrapper import PolicyWrapper
from tests.helpers.malicious import write_malicious

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"


def _args(assets, world, save_dir, *extra: str, stage: str = "stage2") -> list[str]:
    args = [
        "--config",
        str(CONFIGS / f"{stage}.yaml"),
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.sampling.num_samples=2",
        "--model.init_args.sampling.max_new_tokens=8",
        "--model.init_args.micro_batch_size=4",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        "--data.init_args.batch_size=2",
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--trainer.default_root_dir={save_dir}",
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_val_batches=0",
    ]
    if stage == "stage1":
        args.append(f"--model.init_args.clip_scorer.init_args.model={assets['clip']}")
    return [*args, *extra]


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a policy starts loading: the checks under test must come first."""

    def built(path: str) -> None:
        raise AssertionError(f"the policy {path} was loaded before the bad setting was reported")

    # the first thing PolicyWrapper.__init__ does (patching __init__ itself would change what jsonargparse parses)
    monkeypatch.setattr(PolicyWrapper, "_check_source", staticmethod(built))


def _one_line_error(capsys, run) -> str:
    with pytest.raises(SystemExit) as stop:
        run()
    assert stop.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1, err
    return err[0]


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {POLICY_PREFIX + "w": torch.randn(64, 64)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:500])
    return {
        "missing": tmp_path / "missing.ckpt",
        "truncated": truncated,
        "malicious": write_malicious(tmp_path / "evil.ckpt", tmp_path / "PWNED"),
    }


PROBLEM = {"missing": "does not exist", "truncated": "is damaged", "malicious": "holds objects other than tensors"}


@pytest.mark.parametrize("kind", ["missing", "truncated", "malicious"])
@pytest.mark.parametrize("setting", ["init_from", "ckpt_path"])
def test_bad_checkpoint_stops_before_any_model_in_one_line(assets, world, tmp_path, capsys, no_model, kind, setting):
    path = _bad_files(tmp_path)[kind]
    flag = "--model.init_args.init_from" if setting == "init_from" else "--ckpt_path"
    line = _one_line_error(capsys, lambda: main(["fit", *_args(assets, world, tmp_path / "run", f"{flag}={path}")]))
    assert line.startswith(f"error: {setting}={str(path)!r} {PROBLEM[kind]}")
    assert not (tmp_path / "PWNED").exists()


def test_non_finite_init_from_is_named_right_after_its_weights_are_read(assets, world, policy, tmp_path, capsys):
    weights = {POLICY_PREFIX + n: p.detach().clone() for n, p in policy.model.named_parameters()}
    name = next(iter(weights))
    weights[name][0] = float("nan")
    path = tmp_path / "nan.ckpt"
    torch.save({"state_dict": weights, "pebr_policy": policy.describe()}, path)
    line = _one_line_error(
        capsys, lambda: main(_args(assets, world, tmp_path / "run", f"--model.init_args.init_from={path}"), run=False)
    )
    assert line == (
        f"error: init_from={str(path)!r} holds non-finite (NaN/inf) weights: {name[len(POLICY_PREFIX) :]!r}. "
        "Use an earlier checkpoint of the run (one written before the values diverged)."
    )


def test_missing_clip_directory_is_not_taken_for_a_model_name(assets, world, tmp_path, capsys, no_model):
    missing = tmp_path / "clip-nope"
    flag = f"--model.init_args.clip_scorer.init_args.model={missing}"
    args = _args(assets, world, tmp_path / "run", flag, stage="stage1")
    line = _one_line_error(capsys, lambda: main(args, run=False))
    assert line.startswith(f"error: ClipScorer.model={str(missing)!r}: no such directory.")


def test_export_refuses_a_malicious_checkpoint(tmp_path, capsys, no_model):
    from pebr_lit.policy.export import main as export

    path = write_malicious(tmp_path / "evil.ckpt", tmp_path / "PWNED")
    line = _one_line_error(capsys, lambda: export(["--ckpt", str(path), "--out", str(tmp_path / "out")]))
    assert line.startswith(f"error: --ckpt={str(path)!r} holds objects other than tensors")
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow  # two short fits: ~12 s on 2 cores
def test_damaged_last_resumes_from_the_step_checkpoint_and_a_locked_run_is_refused(assets, world, tmp_path, capsys):
    first = main(_args(assets, world, tmp_path, "--trainer.max_steps=2"), run=False)
    assert isinstance(first.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    next(cb for cb in first.trainer.callbacks if isinstance(cb, ModelCheckpoint))._every_n_train_steps = 1
    first.trainer.fit(first.model, first.datamodule)
    folder = tmp_path / "stage2" / "checkpoints"
    step2, last = folder / "epoch=0-step=2.ckpt", folder / "last.ckpt"
    assert sorted(p.name for p in folder.iterdir()) == [step2.name, last.name]
    assert torch.serialization.get_unsafe_globals_in_checkpoint(last) == []  # weights_only needs no allowlist
    assert not (tmp_path / "stage2" / ".fit.lock").exists()  # released at the end of the fit
    last.write_bytes(last.read_bytes()[:1000])  # e.g. a copy cut short

    resume = _args(assets, world, tmp_path, "--trainer.max_steps=3", "--ckpt_path=last")
    holder = RunLock(tmp_path / "stage2")
    holder.acquire()
    try:
        line = _one_line_error(capsys, lambda: main(["fit", *resume]))
    finally:
        holder.release()
    assert f"run directory {(tmp_path / 'stage2').resolve()} is being written by another fit (pid " in line

    with pytest.warns(UserWarning, match=r"last\.ckpt is not usable \(is damaged.*resuming from .*step=2\.ckpt"):
        resumed = main(["fit", *resume])
    assert resumed.trainer.global_step == 3 and resumed.model.rollout_batches == 3
