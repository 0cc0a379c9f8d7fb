"""Smoke: re-tiering Medium with the stage-1 policy (configs/examples/retier_medium.yaml) on the tiny model.

A 1-step stage 1 writes a checkpoint; sampling with that checkpoint as ``init_from`` answers the
Medium questions; ``data.tiers`` splits them again. What is checked: the sampling policy holds the
stage-1 weights, every Medium question gets one row, and the new tiers partition the old Medium tier.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cli import main
from pebr_lit.data.records import load_records, write_records
from pebr_lit.data.tiers import TIERS, write_tiers
from pebr_lit.policy.wrapper import PolicyWrapper

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_medium_is_resampled_with_the_stage1_policy_and_tiered_again(assets, world, tmp_path):
    medium = tmp_path / "tiers" / "medium.jsonl"
    medium.parent.mkdir()
    write_records(load_records(world / "val.jsonl")[:6], medium)
    s1 = main(
        [
            "fit",
            "--config",
            str(CONFIGS / "demo" / "stage1.yaml"),
            "--model.init_args.init_from=null",
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            f"--model.init_args.clip_scorer.init_args.model={assets['clip']}",
            "--model.init_args.sampling.num_samples=2",
            "--model.init_args.sampling.max_new_tokens=4",
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            "--data.init_args.val_files=null",
            "--data.init_args.batch_size=2",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    ckpt = tmp_path / "stage1" / "checkpoints" / "last.ckpt"
    samples = tmp_path / "retier" / "samples.jsonl"
    sampled = main(
        [
            "predict",
            "--config",
            str(CONFIGS / "examples" / "retier_medium.yaml"),
            f"--model.init_args.init_from={ckpt}",
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            f"--data.init_args.predict_files=[{medium}]",
            "--data.init_args.eval_batch_size=3",
            "--model.init_args.eval_sampling.num_samples=2",
            "--model.init_args.eval_sampling.max_new_tokens=4",
            f"--trainer.callbacks.output_path={samples}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    trained = s1.model.policy.model.state_dict()
    base = PolicyWrapper(str(assets["vlm"]), dtype="float32").model.state_dict()
    assert any(not torch.equal(trained[k], base[k]) for k in base), (
        "stage 1 left the weights unchanged: the check below would be void"
    )
    # Exact: the tiny model's rewards give stage 1 little signal, so its weights moved by little more than weight decay.
    for name, value in sampled.model.policy.model.state_dict().items():
        assert torch.equal(value, trained[name]), f"{name} is not the stage-1 weight"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert sorted(r["qid"] for r in rows) == sorted(r.qid for r in load_records(medium, allow_outside_root=True))

    # A tier file's images lie outside its folder (they point back at the data), as in configs/examples/.
    summary = write_tiers(samples, [medium], tmp_path / "retier" / "tiers", allow_outside_root=True)
    tiers = tmp_path / "retier" / "tiers"
    again = {t: [r.qid for r in load_records(tiers / f"{t}.jsonl", allow_outside_root=True)] for t in TIERS}
    assert sorted(sum(again.values(), [])) == sorted(r.qid for r in load_records(medium, allow_outside_root=True))
    assert summary["questions"] == 6
