"""Smoke: a stage-2 GRPO run under DDP on 2 CPU processes (gloo), checked rank by rank.

One ``python cli.py fit`` run with ``trainer.devices: 2``; Lightning starts the second process itself.
A ``DDPProbe`` callback (tests/helpers/ddp_probe.py) writes what each rank saw; the tests compare
the two files with the global batches of ``PromptStream`` and with the CSV log written by rank 0.
Run settings: 4 prompts per global batch (2 per rank), 4 rollouts each, 2 rollout batches of 2
optimizer steps each (so 2 backward passes per optimizer step), 5 validation records (3 + 2).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pebr_lit.data.prompt_stream import PromptStream
from pebr_lit.data.records import load_records

ROOT = Path(__file__).resolve().parents[2]
GROUP, GLOBAL_BATCH, ROLLOUT_STEPS, MINI_BATCHES, VAL_RECORDS = 4, 4, 2, 2, 5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ddp_run(assets, world, tmp_path_factory):
    """Run the stage on 2 processes; returns (the two ranks' probe reports, the CSV log's rows)."""
    out = tmp_path_factory.mktemp("ddp")
    strategy = {
        "class_path": "lightning.pytorch.strategies.DDPStrategy",
        "init_args": {"process_group_backend": "gloo"},
    }
    probe = {"class_path": "tests.helpers.ddp_probe.DDPProbe", "init_args": {"out_dir": str(out / "probe")}}
    cmd = [
        sys.executable,
        "cli.py",
        "fit",
        "--config",
        "configs/demo/stage2.yaml",
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        f"--model.init_args.sampling.num_samples={GROUP}",
        "--model.init_args.sampling.max_new_tokens=8",
        "--model.init_args.eval_sampling.do_sample=true",  # varied texts, so per-record values differ
        "--model.init_args.eval_sampling.max_new_tokens=8",
        "--model.init_args.micro_batch_size=3",  # 8 rollouts per rank, 4 per optimizer step: 2 backwards
        f"--model.init_args.mini_batches={MINI_BATCHES}",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        f"--data.init_args.batch_size={GLOBAL_BATCH}",
        "--data.init_args.eval_batch_size=2",
        f"--data.init_args.val_limit={VAL_RECORDS}",  # odd: a padding sampler would repeat one
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.default_root_dir={out}",
        "--trainer.enable_progress_bar=false",
        f"--trainer.max_steps={ROLLOUT_STEPS * MINI_BATCHES}",
        f"--trainer.val_check_interval={ROLLOUT_STEPS}",
        "--trainer.devices=2",
        f"--trainer.strategy={json.dumps(strategy)}",
        f"--trainer.callbacks+={json.dumps(probe)}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"DDP run failed (rc {done.returncode}):\n{done.stderr[-4000:]}"
    reports = [json.loads((out / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    with open(out / "stage2" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return reports, rows


def _logged(report: dict, phase: str, name: str) -> list[dict]:
    return [e for e in report["logged"] if e["phase"] == phase and e["name"] == name]


def _csv_values(rows: list[dict], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name)]


def test_ranks_split_each_global_batch_without_overlap(ddp_run, world):
    reports, _ = ddp_run
    assert [r["world_size"] for r in reports] == [2, 2]
    records = load_records(world / "train.jsonl")
    stream = PromptStream(records, GLOBAL_BATCH, seed=0, epochs=2.0, collate=list)  # the datamodule's defaults
    for k in range(ROLLOUT_STEPS):
        per_rank = [set(r["steps"][k]["qids"]) for r in reports]
        assert [len(q) for q in per_rank] == [GLOBAL_BATCH // 2] * 2, k
        assert not per_rank[0] & per_rank[1], f"step {k}: a prompt went to both ranks"
        assert per_rank[0] | per_rank[1] == {records[i].qid for i in stream.batch_indices(k)}, k


def test_every_group_is_generated_and_scored_on_one_rank(ddp_run):
    reports, _ = ddp_run
    for k in range(ROLLOUT_STEPS):
        for report in reports:
            step = report["steps"][k]
            # All G rollouts of each of the rank's own prompts, and nothing else.
            assert step["rows"] == {qid: GROUP for qid in step["qids"]}, (report["rank"], k)


def test_weights_stay_identical_across_ranks(ddp_run):
    reports, _ = ddp_run
    assert reports[0]["initial_digest"] == reports[1]["initial_digest"]
    assert reports[0]["reference_digest"] is not None
    assert reports[0]["reference_digest"] == reports[1]["reference_digest"]
    previous = reports[0]["initial_digest"]
    for k in range(ROLLOUT_STEPS):
        steps = [r["steps"][k] for r in reports]
        assert [s["global_step"] for s in steps] == [MINI_BATCHES * (k + 1)] * 2
        # The ranks scored different rollouts (their local probe rewards differ), so equal weights
        # after the step mean the gradients were averaged before each optimizer step.
        local = [_logged(r, "train", "train/reward/probe")[k]["value"] for r in reports]
        assert local[0] != local[1], f"step {k}: both ranks drew the same rollouts (same sampling seed?)"
        assert steps[0]["digest"] == steps[1]["digest"], f"weights diverged at rollout step {k}"
        assert steps[0]["digest"] != previous, f"no update at rollout step {k}"
        previous = steps[0]["digest"]


def test_train_metrics_are_reduced_over_ranks(ddp_run):
    reports, rows = ddp_run
    reductions = {"train/response_length/max": max, "train/updated_rollouts": sum}
    names = [
        "train/reward/probe",
        "train/reward/total",
        "train/reward_std",
        "train/zero_variance_groups",
        "train/response_length/mean",
        "train/truncation_rate",
        *reductions,
    ]
    for name in names:
        logged = _csv_values(rows, name)
        assert len(logged) == ROLLOUT_STEPS, name
        for k in range(ROLLOUT_STEPS):
            local = [_logged(r, "train", name)[k]["value"] for r in reports]
            expected = reductions[name](local) if name in reductions else sum(local) / 2  # same batch size per rank
            assert logged[k] == pytest.approx(expected, rel=1e-5, abs=1e-6), (name, k, local)
    # Loss diagnostics are reduced before logging (KL control reads them): the same on both ranks.
    for name in ("train/kl", "train/entropy", "train/policy_loss"):
        values = [[e["value"] for e in _logged(r, "train", name)] for r in reports]
        assert values[0] == pytest.approx(values[1], rel=1e-6, abs=1e-9), name
        assert _csv_values(rows, name) == pytest.approx(values[0], rel=1e-5, abs=1e-7), name


def test_validation_sees_each_record_once_and_logs_their_mean(ddp_run, world):
    reports, rows = ddp_run
    per_rank = [[qid for qid, _ in r["val_rows"]] for r in reports]
    assert sorted(len(q) for q in per_rank) == [2, 3]
    assert not set(per_rank[0]) & set(per_rank[1]), "a validation record was evaluated on both ranks"
    expected_qids = [r.qid for r in load_records(world / "val.jsonl")[:VAL_RECORDS]]
    assert sorted(per_rank[0] + per_rank[1]) == sorted(expected_qids)
    values = dict(row for r in reports for row in r["val_rows"])  # qid -> probe value of its response
    assert len(set(values.values())) > 1, "all responses scored alike: the check below could not fail"
    # The logged value must be the plain mean over the 5 records, whichever rank scored them.
    assert _csv_values(rows, "val/reward/probe") == [pytest.approx(sum(values.values()) / VAL_RECORDS, rel=1e-5)]
