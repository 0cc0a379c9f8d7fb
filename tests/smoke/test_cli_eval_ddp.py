"""Smoke: benchmark evaluation on 2 CPU processes (gloo): every question answered once, answers per rank, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.benchmark_files import mathvista_row, write_parquet

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(assets, data: Path, logs: Path, out: Path | None = None) -> subprocess.CompletedProcess:
    """One evaluation on 2 processes; results in ``out``, or (None) in the logger's run directory under ``logs``."""
    strategy = {
        "class_path": "lightning.pytorch.strategies.DDPStrategy",
        "init_args": {"process_group_backend": "gloo"},
    }
    cmd = [
        sys.executable,
        "cli.py",
        "test",
        "--config",
        "configs/eval/mathvista.yaml",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.policy.init_args.dtype=float32",
        "--model.init_args.sampling.max_new_tokens=8",
        f"--model.init_args.benchmarks.init_args.path={data}",
        *([f"--model.init_args.output_dir={out}"] if out else []),
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        f"--trainer.strategy={json.dumps(strategy)}",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={logs}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"evaluation under DDP failed (rc {done.returncode}):\n{done.stderr[-4000:]}"
    return done


def test_each_question_once_then_resume_from_both_ranks_answers(assets, tmp_path):
    data = write_parquet(
        tmp_path / "MathVista" / "testmini-00000-of-00001.parquet",
        [mathvista_row(str(i), "free_form", str(i), answer_type="integer") for i in range(1, 8)],
    )  # 7 questions: 4 on one rank, 3 on the other
    _run(assets, data, tmp_path / "logs")  # no output_dir: every process must agree on the logger's directory
    out = tmp_path / "logs" / "mathvista" / "version_0"
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == [str(i) for i in range(1, 8)]
    per_rank = {
        r: [json.loads(line) for line in (out / "answers" / f"mathvista.rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    }
    assert sorted(len(v) for v in per_rank.values()) == [3, 4]
    assert sorted(row["qid"] for v in per_rank.values() for row in v) == sorted(r["qid"] for r in rows)
    # Rank 1 died after its first answer; rank 0's answers are all there, one marked to show reuse.
    first1 = per_rank[1][0]
    (out / "answers" / "mathvista.rank1.jsonl").write_text(json.dumps(first1) + "\n")
    marked = {**per_rank[0][0], "response": "REUSED"}
    (out / "answers" / "mathvista.rank0.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in [marked, *per_rank[0][1:]])
    )
    _run(assets, data, tmp_path / "logs", out)  # resume into the first run's directory
    again = {r["qid"]: r for r in (json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines())}
    assert sorted(again, key=int) == [str(i) for i in range(1, 8)]
    assert again[marked["qid"]]["response"] == "REUSED"
    answered = [
        json.loads(line)["qid"]
        for r in (0, 1)
        for line in (out / "answers" / f"mathvista.rank{r}.jsonl").read_text().splitlines()
    ]
    assert sorted(answered, key=int) == [str(i) for i in range(1, 8)]  # the lost ones answered once more, nothing twice
