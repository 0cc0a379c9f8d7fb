"""Smoke: a GRPO fit and a benchmark evaluation through the CLI with an sglang server engine (a stand-in
server on 127.0.0.1): weight syncs, /generate calls and the logged log-prob gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers.sglang_server import fake_sglang_servers, scripted_reply


@pytest.fixture
def fake():
    with fake_sglang_servers() as start:
        yield start


def _fit_with_engine(engine: dict, assets, world, tmp_path):
    """Two GRPO steps of the stage-2 demo config with ``engine`` as the rollout engine."""
    from cli import main

    configs = Path(__file__).resolve().parents[2] / "configs" / "demo"
    return main(
        [
            "fit",
            "--config",
            str(configs / "stage2.yaml"),
            "--model.init_args.init_from=null",
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            f"--model.init_args.rollout_engine={json.dumps(engine)}",
            "--model.init_args.sampling.num_samples=2",
            "--model.init_args.sampling.max_new_tokens=8",
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            "--data.init_args.val_files=null",
            "--data.init_args.batch_size=2",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
            "--trainer.limit_val_batches=0",
            "--trainer.fast_dev_run=2",
        ]
    )


def test_grpo_steps_with_a_server_engine_sync_and_log_the_log_prob_gap(assets, world, fake, tmp_path):
    server = fake(scripted_reply)
    engine = {"class_path": "pebr_lit.rollout.SGLangServer", "init_args": {"url": server.url, "timeout_s": 30}}
    with pytest.warns(
        UserWarning, match="logprob_tolerance=0.05"
    ):  # the fake's log-probs (-0.5 each) are not the model's
        cli = _fit_with_engine(engine, assets, world, tmp_path)
    # One sync before the first rollout (the engine starts from its own checkpoint), one after each update.
    assert [path for path, _ in server.requests] == [
        "/update_weights_from_disk",
        "/generate",
        "/update_weights_from_disk",
        "/generate",
        "/update_weights_from_disk",
    ]
    logged = cli.trainer.logged_metrics
    assert torch.isfinite(logged["train/engine_logprob_diff/mean"]) and logged["train/engine_logprob_diff/max"] > 0


def test_benchmark_evaluation_with_a_server_engine(assets, fake, tmp_path):
    """``cli.py test`` with an sglang server engine: one weight push at the start, then one /generate per batch."""
    from cli import main
    from tests.helpers.benchmark_files import mathvista_row, write_parquet

    data = write_parquet(
        tmp_path / "mv" / "testmini-00000-of-00001.parquet",
        [mathvista_row(str(i), "free_form", "4", answer_type="integer") for i in range(1, 4)],
    )
    server = fake(scripted_reply)
    engine = {"class_path": "pebr_lit.rollout.SGLangServer", "init_args": {"url": server.url, "timeout_s": 30}}
    configs = Path(__file__).resolve().parents[2] / "configs" / "eval"
    out = tmp_path / "eval"
    main(
        [
            "test",
            "--config",
            str(configs / "mathvista.yaml"),
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            "--model.init_args.policy.init_args.dtype=float32",
            f"--model.init_args.rollout_engine={json.dumps(engine)}",
            f"--model.init_args.benchmarks.init_args.path={data}",
            f"--model.init_args.output_dir={out}",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    assert [path for path, _ in server.requests] == ["/update_weights_from_disk", "/generate", "/generate"]
    assert [len(body["input_ids"]) for path, body in server.requests if path == "/generate"] == [2, 1]
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    # scripted_reply: row k of a request gets k + 1 tokens; the third row of none runs out of tokens.
    assert [r["response_tokens"] for r in rows] == [2, 3, 2] and not any(r["truncated"] for r in rows)
