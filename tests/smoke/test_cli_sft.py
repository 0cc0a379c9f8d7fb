"""Smoke: the LightningCLI runs SFT end to end on the tiny model (fast_dev_run), and stage hand-over works."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "sft.yaml"


def _args(assets, world, save_dir, *extra: str) -> list[str]:
    return [
        "--config",
        str(CONFIG),
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        f"--data.init_args.test_files=[{world / 'test.jsonl'}]",
        "--data.init_args.batch_size=4",
        "--data.init_args.eval_batch_size=8",
        "--data.init_args.val_limit=8",
        "--model.init_args.eval_sampling.max_new_tokens=16",
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--trainer.default_root_dir={save_dir}",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]


def test_fast_dev_run_fit(assets, world, tmp_path):
    cli = main(["fit", *_args(assets, world, tmp_path, "--trainer.fast_dev_run=2")])
    logged = cli.trainer.logged_metrics
    assert torch.isfinite(logged["train/loss"])
    assert 0.0 <= float(logged["val/format_rate"]) <= 1.0 and 0.0 <= float(logged["val/accuracy"]) <= 1.0


def test_checkpoint_starts_next_stage_and_resume(assets, world, tmp_path):
    first = main(
        ["fit", *_args(assets, world, tmp_path / "a", "--trainer.max_steps=3", "--trainer.val_check_interval=3")]
    )
    ckpt = tmp_path / "a" / "sft" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    trained = {k: v.clone() for k, v in first.model.policy.model.state_dict().items()}

    # init_from: weights only; a fresh optimizer and step 0.
    second = main(
        [
            *_args(
                assets,
                world,
                tmp_path / "b",
                "--trainer.max_steps=1",
                "--trainer.limit_val_batches=0",
                f"--model.init_args.init_from={ckpt}",
            )
        ],
        run=False,
    )
    for name, value in second.model.policy.model.state_dict().items():
        torch.testing.assert_close(value, trained[name], msg=f"{name} not carried over")

    # --ckpt_path: resumes the step count too.
    third = main(
        [
            "fit",
            *_args(
                assets,
                world,
                tmp_path / "a",
                "--trainer.max_steps=4",
                "--trainer.val_check_interval=4",
                f"--ckpt_path={ckpt}",
            ),
        ]
    )
    assert third.trainer.global_step == 4


def test_validate_and_test_commands(assets, world, tmp_path):
    cli = main(["test", *_args(assets, world, tmp_path)])
    assert "test/accuracy" in cli.trainer.logged_metrics


def test_missing_model_dir_is_a_clear_error(world, tmp_path, capsys):
    # raised inside jsonargparse's instantiation, printed alone (no dump of the config), exit status 2
    with pytest.raises(SystemExit) as stop:
        main(_args({"vlm": tmp_path / "nope"}, world, tmp_path), run=False)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert stop.value.code == 2 and len(errors) == 1
    assert errors[0].startswith(f"error: model_name_or_path={str(tmp_path / 'nope')!r} is not a directory")
    assert "python -m pebr_lit.demo.tiny" in errors[0]


def test_predict_writes_one_row_per_question(assets, world, tmp_path):
    import json

    out = tmp_path / "pred.jsonl"
    main(
        [
            "predict",
            *_args(assets, world, tmp_path),
            f"--data.init_args.predict_files=[{world / 'val.jsonl'}]",
            f"--trainer.callbacks.output_path={out}",
        ]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 16 and len({r["qid"] for r in rows}) == 16
    assert all(len(r["responses"]) == 1 and r["correct"][0] in (0.0, 1.0) for r in rows)


def test_evaluating_with_the_fit_config_keeps_the_training_logs(assets, world, tmp_path):
    main(
        [
            "fit",
            *_args(
                assets,
                world,
                tmp_path,
                "--trainer.max_steps=2",
                "--trainer.limit_val_batches=0",
                "--trainer.log_every_n_steps=1",
            ),
        ]
    )
    metrics = tmp_path / "sft" / "metrics.csv"
    before = metrics.read_text()
    assert "train/loss" in before
    main(["validate", *_args(assets, world, tmp_path)])
    assert metrics.read_text() == before
    assert "val/accuracy" in (tmp_path / "sft" / "validate" / "metrics.csv").read_text()


def test_a_yaml_prompt_template_and_text_only_option_reach_the_datamodule(assets, world, tmp_path):
    template = tmp_path / "format.jinja"
    template.write_text("Sections first.\n{{ content }}\n", encoding="utf-8")
    overlay = tmp_path / "prompt.yaml"
    overlay.write_text(
        "data:\n"
        "  init_args:\n"
        "    text_only: skip\n"
        "    prompt:\n"
        "      class_path: pebr_lit.format.prompts.TemplatePrompt\n"
        "      init_args:\n"
        f"        template: {template}\n",
        encoding="utf-8",
    )
    cli = main([*_args(assets, world, tmp_path), "--config", str(overlay)], run=False)
    prompt = cli.datamodule.prompt
    assert type(prompt).__name__ == "TemplatePrompt" and prompt.template == str(template)
    assert prompt.text("Q?") == "Sections first.\nQ?" and cli.datamodule.text_only == "skip"
    # The default is pebr-lit's own instruction prompt, built fresh per DataModule.
    plain = main(_args(assets, world, tmp_path), run=False).datamodule
    assert type(plain.prompt).__name__ == "InstructionPrompt" and plain.text_only == "keep"
