"""Smoke: both GRPO stages run through the CLI on the tiny model; stage hand-over and resume work."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"


def _args(stage: str, assets, world, save_dir, *extra: str) -> list[str]:
    args = [
        "--config",
        str(CONFIGS / f"{stage}.yaml"),
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.sampling.num_samples=4",
        "--model.init_args.sampling.max_new_tokens=12",
        "--model.init_args.eval_sampling.max_new_tokens=12",
        "--model.init_args.micro_batch_size=3",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        "--data.init_args.batch_size=2",
        "--data.init_args.eval_batch_size=8",
        "--data.init_args.val_limit=8",
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--trainer.default_root_dir={save_dir}",
        "--trainer.enable_progress_bar=false",
    ]
    if stage == "stage1":
        args.append(f"--model.init_args.clip_scorer.init_args.model={assets['clip']}")
    return [*args, *extra]


@pytest.mark.parametrize("rules", ["PebrLitRules", "AuthorsRules"])
def test_stage1_fast_dev_run_logs_every_component(assets, world, tmp_path, rules):
    choose = f"--model.init_args.reward.init_args.rules=pebr_lit.rewards.rules.{rules}"
    cli = main(["fit", *_args("stage1", assets, world, tmp_path, "--trainer.fast_dev_run=2", choose)])
    assert type(cli.model.reward.rules).__name__ == rules
    logged = cli.trainer.logged_metrics
    for name in ("clip", "keyword", "format", "length", "accuracy", "total"):
        assert torch.isfinite(logged[f"train/reward/{name}"]), name
    for name in (
        "kl",
        "clip_fraction",
        "entropy",
        "reward_std",
        "zero_variance_groups",
        "truncation_rate",
        "response_length/max",
    ):
        assert torch.isfinite(logged[f"train/{name}"]), name
    assert "val/reward/keyword" in logged and "val/accuracy" in logged
    assert cli.model.rollout_batches == 2


def test_stage2_starts_from_stage1_and_resumes_at_the_same_prompt(assets, world, tmp_path):
    s1 = main(
        [
            "fit",
            *_args("stage1", assets, world, tmp_path / "s1", "--trainer.max_steps=2", "--trainer.limit_val_batches=0"),
        ]
    )
    ckpt = tmp_path / "s1" / "stage1" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    trained = {k: v.clone() for k, v in s1.model.policy.model.state_dict().items()}

    s2 = main([*_args("stage2", assets, world, tmp_path / "s2", f"--model.init_args.init_from={ckpt}")], run=False)
    for name, value in s2.model.policy.model.state_dict().items():
        torch.testing.assert_close(value, trained[name], msg=f"{name} not carried over")


class _Crash(L.Callback):
    """Records each step's prompt ids; raises after ``crash_after`` steps (a simulated kill)."""

    def __init__(self, seen: list, crash_after: int | None = None) -> None:
        self.seen, self.crash_after = seen, crash_after

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append([r.qid for r in batch["records"]])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.crash_after is not None and trainer.global_step >= self.crash_after:
            raise RuntimeError("simulated crash")


def _fit(assets, world, save_dir, seen, crash_after=None, ckpt_path=None):
    cli = main(
        _args("stage2", assets, world, save_dir, "--trainer.max_steps=3", "--trainer.limit_val_batches=0"), run=False
    )
    checkpoint = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ModelCheckpoint))
    checkpoint._every_n_train_steps = 1
    cli.trainer.callbacks.append(_Crash(seen, crash_after))
    try:
        cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=ckpt_path)
    except RuntimeError as err:
        assert "simulated crash" in str(err)
    return cli


@pytest.mark.slow
def test_resumed_stage_neither_repeats_nor_skips_prompts(assets, world, tmp_path):
    straight: list = []
    _fit(assets, world, tmp_path / "straight", straight)
    interrupted: list = []
    _fit(assets, world, tmp_path / "crash", interrupted, crash_after=2)
    last = tmp_path / "crash" / "stage2" / "checkpoints" / "last.ckpt"
    resumed = _fit(assets, world, tmp_path / "crash", interrupted, ckpt_path=str(last))
    assert len(straight) == 3 and interrupted == straight
    assert (resumed.model.rollout_batches, resumed.trainer.global_step) == (3, 3)


def test_resume_over_another_training_stream_is_refused(assets, world, tmp_path):
    seen: list = []
    _fit(assets, world, tmp_path, seen, crash_after=1)
    last = tmp_path / "stage2" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["PromptDataModule"]["stream"]["records"] > 0
    for extra, what in (
        (f"--data.init_args.train_files=[{world / 'val.jsonl'}]", "records"),
        ("--data.init_args.seed=7", "seed 0 -> 7"),
    ):
        cli = main(
            _args("stage2", assets, world, tmp_path, "--trainer.max_steps=3", "--trainer.limit_val_batches=0", extra),
            run=False,
        )
        with pytest.raises(ValueError, match=rf"another training stream \(.*{what}.*--model.init_args.init_from"):
            cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=str(last))
    # More epochs over the same pool continue the same stream: allowed.
    cli = main(
        _args(
            "stage2",
            assets,
            world,
            tmp_path,
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=0",
            "--data.init_args.epochs=2",
        ),
        run=False,
    )
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=str(last))
    assert cli.trainer.global_step == 2
