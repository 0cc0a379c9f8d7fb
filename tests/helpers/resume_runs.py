"""GRPO fits of the tiny model as real ``cli.py`` processes, killed with SIGKILL and resumed, for the resume tests.

``StepRecord`` (a callback, loaded by ``class_path`` in the child) appends one fsynced JSON line per finished
rollout step: the step, the prompt qids and a hash of the rollout texts; it is also a ``RewardTerm`` whose value
is a hash of each response, so rewards vary inside groups and every step's update depends on what was sampled
(an untrained model's own rewards are flat, which would leave the weights blind to the sampling).
``overlay`` writes a stage config over ``configs/demo/<stage>.yaml`` with checkpoints every 2 steps and the
record; ``start`` launches ``cli.py fit``; ``kill_when`` SIGKILLs (or signals) it once a condition holds;
``finish`` runs to the end.

Left out on purpose: any assertion (the tests compare the runs).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]


class StepRecord(L.Callback):
    """Record each rollout step (qids, rollout-text hash) in ``path``; a ``RewardTerm`` hashing each response.

    Args:
        path: JSONL file that receives one line per finished training step.
        weight: Weight of the ``record`` reward component.
    """

    name = "record"

    def __init__(self, path: str, weight: float = 1.0) -> None:
        self.path, self.weight = path, weight
        self._texts: list[str] = []

    def reward_values(self, texts: Sequence[str], num_tokens: torch.Tensor) -> torch.Tensor:
        self._texts = list(texts)
        return torch.tensor([int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) / 16**8 for t in texts])  # [N]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        row = {
            "step": trainer.global_step,
            "qids": [r.qid for r in batch["records"].records],
            "texts": hashlib.sha256("\x00".join(self._texts).encode()).hexdigest(),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def overlay(out: Path, stage: str, every_n_train_steps: int = 2) -> Path:
    """A config over ``configs/demo/<stage>.yaml``: checkpoints every N steps, the stage's callbacks, a record."""
    callbacks: list[dict[str, Any]] = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"save_last": True, "every_n_train_steps": every_n_train_steps},
        },
        {"class_path": "callbacks.reference.ReferencePolicy"},
        {"class_path": "callbacks.kl_control.KLController", "init_args": {"coef": 0.01}},
        {"class_path": "tests.helpers.resume_runs.StepRecord", "init_args": {"path": str(out / "steps.jsonl")}},
    ]
    if stage == "stage1":
        callbacks.append(
            {"class_path": "callbacks.length_penalty.LengthPenalty", "init_args": {"weight": 0.1, "target_tokens": 8}}
        )
    path = out / f"{stage}_resume.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# overlay-of: {ROOT / 'configs' / 'demo' / f'{stage}.yaml'}\n"
        + yaml.safe_dump({"trainer": {"callbacks": callbacks}})
    )
    return path


def fit_args(stage: str, assets: dict[str, Path], world: Path, out: Path, steps: int, *extra: str) -> list[str]:
    """``cli.py fit`` arguments: ``steps`` rollout steps of 2 prompts x 4 responses of 12 tokens, a validation at 3."""
    args = [
        "fit",
        "--config",
        str(overlay(out, stage)),
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.sampling.num_samples=4",
        "--model.init_args.sampling.max_new_tokens=12",
        "--model.init_args.eval_sampling.max_new_tokens=12",
        "--model.init_args.micro_batch_size=8",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        "--data.init_args.batch_size=2",
        "--data.init_args.eval_batch_size=4",
        "--data.init_args.val_limit=4",
        "--trainer.val_check_interval=3",
        f"--trainer.max_steps={steps}",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.default_root_dir={out}",
        "--trainer.enable_progress_bar=false",
        "--ckpt_path=last",
    ]
    if stage == "stage1":
        args.append(f"--model.init_args.clip_scorer.init_args.model={assets['clip']}")
    return [*args, *extra]


def start(args: list[str], log: Path) -> subprocess.Popen:
    """``python cli.py <args>`` in the repository root, one torch thread, output to ``log``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, env=env, stdout=f, stderr=f)


def finish(args: list[str], log: Path, timeout: float = 600) -> None:
    """Run ``cli.py <args>`` to its end; fail with the log's tail on a non-zero exit."""
    proc = start(args, log)
    rc = proc.wait(timeout)
    if rc != 0:
        raise AssertionError(f"cli.py {' '.join(args[:1])} exited {rc}:\n{log.read_text()[-4000:]}")


def kill_when(
    args: list[str], log: Path, ready: Callable[[], bool], timeout: float = 600, sig: int = signal.SIGKILL
) -> int:
    """Start ``cli.py <args>``, send it ``sig`` (SIGKILL) as soon as ``ready()`` holds (polled every 10 ms); its
    exit status."""
    proc = start(args, log)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                tail = log.read_text()[-4000:]
                raise AssertionError(f"the fit ended (rc {proc.returncode}) before it was killed:\n{tail}")
            if time.monotonic() > deadline:
                raise AssertionError(f"kill condition not reached within {timeout} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.01)
        proc.send_signal(sig)
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def steps(out: Path) -> list[dict[str, Any]]:
    """The ``StepRecord`` lines of a run directory (complete lines only)."""
    path = out / "steps.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def metric_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a ``metrics.csv`` (none while it does not exist)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_rows(path: Path) -> dict[int, list[dict[str, str]]]:
    """``metrics.csv``'s rows holding ``train/`` values, by step."""
    by_step: dict[int, list[dict[str, str]]] = {}
    for row in metric_rows(path):
        if row.get("train/reward/total"):
            by_step.setdefault(int(row["step"]), []).append(row)
    return by_step
