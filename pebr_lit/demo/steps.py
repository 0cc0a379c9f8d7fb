"""The demo's steps: the command of each, what it waits for, and its one-line summary.

Each step is a plain command a user could type: ``python cli.py <fit|test|predict> --config
configs/demo/<step>.yaml [--key value ...]`` or ``python -m pebr_lit.<tool> ...``. The configs hold
every setting; the only overrides here are sizes (``DemoSizes``: the real demo, or a minutes-long
smoke version for tests) and, for the ablations and evaluations, which checkpoint to start from and
where to log. Paths are relative to the working directory (``runs/demo/...``, as in the configs).

Left out on purpose: running them (``pebr_lit.demo.driver``) and reading their results into a report
(``pebr_lit.demo.report``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pebr_lit.demo.report import eval_scores, read_metrics, stage_summary

#: Checkpoints evaluated on the held-out split, in the report's (the paper's ablation) order.
EVALUATED = {
    "sft": "runs/demo/sft/checkpoints/last.ckpt",
    "stage1": "runs/demo/stage1/checkpoints/last.ckpt",
    "stage2": "runs/demo/stage2/checkpoints/last.ckpt",
    "stage2_only": "runs/demo/stage2_only/checkpoints/last.ckpt",
}


@dataclass(frozen=True)
class DemoSizes:
    """How much each step does. The defaults are the demo of docs/demo.md (measured on 2 CPU cores)."""

    train: int = 16000  # SFT records; 3,000 steps x 16 = 48k examples, 3 passes
    val: int = 256
    test: int = 512
    rl: int = 384  # RL pool sampled 8x for the tiers
    sft_steps: int | None = None  # None: the config's max_steps
    clip_steps: int = 400
    clip_candidates: int = 64  # held-out retrieval block size of the CLIP figures (at most `val`)
    stage1_steps: int | None = None  # None: the config's epochs over Easy
    stage2_steps: int | None = None  # None: the config's epochs over Medium
    eval_limit: int | None = None  # held-out questions per evaluation; None: the whole test split
    stage_pool: str | None = None  # record file both stages train on instead of their tier; None: the tiers
    teacher_terse: float = 0.3  # SFT responses whose description gives only the count (synthetic_teacher)
    teacher_slip: float = 0.35  # SFT counting answers that are off by one (careless arithmetic)

    @classmethod
    def quick(cls) -> DemoSizes:
        """A smoke version that exercises every step and the report in a few minutes."""
        # A 4-step model answers nothing right, so every question is Hard and Easy/Medium are empty:
        # the stages train on the whole RL pool instead (the tiers step still runs and is reported).
        return cls(
            train=64,
            val=8,
            test=8,
            rl=8,
            sft_steps=4,
            clip_steps=2,
            clip_candidates=8,
            stage1_steps=2,
            stage2_steps=2,
            eval_limit=8,
            stage_pool="runs/demo/data/rl.jsonl",
        )


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain_text(text: str) -> str:
    """Log text without terminal control sequences, one line per progress-bar redraw."""
    return _ANSI.sub("", text).replace("\r", "\n")


def last_line(log: Path) -> str:
    """Default summary: the last non-empty, non-warning output line of the step."""
    lines = [ln.strip() for ln in plain_text(log.read_text(encoding="utf-8", errors="replace")).splitlines()]
    lines = [ln for ln in lines if ln and "warn" not in ln.lower() and not ln.startswith("$ ")]
    return lines[-1][:200] if lines else "(no output)"


@dataclass(frozen=True)
class Step:
    """One demo step: a command, the steps it waits for, and how to summarise it in one line."""

    name: str
    argv: tuple[str, ...]
    needs: tuple[str, ...] = ()
    summary: Callable[[Path], str] | None = None
    alone: bool = False  # run with every core and nothing beside it (the longest step on the critical path)

    def summarize(self, log: Path) -> str:
        try:
            return self.summary(log) if self.summary is not None else last_line(log)
        except (OSError, ValueError, KeyError) as e:  # a summary must never fail a finished step
            return f"finished (no summary: {e})"


def _stage(name: str) -> Callable[[Path], str]:
    return lambda log: stage_summary(read_metrics(Path("runs/demo") / name / "metrics.csv"))


def _evaluated(name: str) -> Callable[[Path], str]:
    def summary(log: Path) -> str:
        s = eval_scores(Path("runs/demo") / f"eval_{name}")
        return ", ".join(f"{k} {v:.3f}" for k, v in s.items())

    return summary


def _sampled(log: Path) -> str:
    rows = [
        json.loads(line) for line in Path("runs/demo/sampling/samples.jsonl").read_text().splitlines() if line.strip()
    ]
    mean = sum(r["pass_rate"] for r in rows) / max(1, len(rows))
    return f"{len(rows)} questions x {rows[0]['n'] if rows else 0} answers, mean pass rate {mean:.3f}"


def demo_steps(sizes: DemoSizes, python: str, root: Path, seed: int = 0) -> list[Step]:
    """The demo's steps in priority order (the critical path first) for ``sizes``."""
    cli = (python, str(root / "cli.py"))
    cfg = lambda name: ("--config", str(root / "configs" / "demo" / f"{name}.yaml"))  # noqa: E731
    pool = ("--data.init_args.train_files", f"[{sizes.stage_pool}]") if sizes.stage_pool else ()
    steps_opt = lambda n: (*pool, "--trainer.max_steps", str(n)) if n is not None else pool  # noqa: E731
    steps = [
        Step("assets", (python, "-m", "pebr_lit.demo.tiny", "--out", "runs/demo/assets", "--seed", str(seed))),
        Step(
            "data",
            (
                python,
                "-m",
                "pebr_lit.demo.synthetic",
                "--out",
                "runs/demo/data",
                "--train",
                str(sizes.train),
                "--val",
                str(sizes.val),
                "--test",
                str(sizes.test),
                "--rl",
                str(sizes.rl),
                "--seed",
                str(seed),
                "--teacher-terse",
                str(sizes.teacher_terse),
                "--teacher-slip",
                str(sizes.teacher_slip),
            ),
        ),
        Step(
            "sft",
            (
                *cli,
                "fit",
                *cfg("sft"),
                "--ckpt_path",
                "last",
                *(
                    ("--trainer.max_steps", str(sizes.sft_steps), "--trainer.log_every_n_steps", "1")
                    if sizes.sft_steps is not None
                    else ()
                ),
            ),
            ("assets", "data"),
            _stage("sft"),
            alone=True,
        ),
        Step(
            "clip",
            (
                python,
                "-m",
                "pebr_lit.clip.train",
                "--clip",
                "runs/demo/assets/clip",
                "--records",
                "runs/demo/data/train.jsonl",
                "--val-records",
                "runs/demo/data/val.jsonl",
                "--out",
                "runs/demo/clip",
                "--steps",
                str(sizes.clip_steps),
                "--batch-size",
                "64",
                "--lr",
                "1e-3",
                "--no-progress",
                "--eval-candidates",
                str(sizes.clip_candidates),
            ),
            ("assets", "data"),
        ),
        Step("sample", (*cli, "predict", *cfg("sample")), ("sft",), _sampled),
        Step(
            "tiers",
            (
                python,
                "-m",
                "pebr_lit.data.tiers",
                "--samples",
                "runs/demo/sampling/samples.jsonl",
                "--records",
                "runs/demo/data/rl.jsonl",
                "--out",
                "runs/demo/tiers",
            ),
            ("sample",),
        ),
        Step(
            "stage1",
            (*cli, "fit", *cfg("stage1"), "--ckpt_path", "last", *steps_opt(sizes.stage1_steps)),
            ("tiers", "clip"),
            _stage("stage1"),
        ),
        Step(
            "stage2",
            (*cli, "fit", *cfg("stage2"), "--ckpt_path", "last", *steps_opt(sizes.stage2_steps)),
            ("stage1",),
            _stage("stage2"),
        ),
        # Ablation (the paper's "stage 2 only"): reasoning RL straight from the warm-up model.
        Step(
            "stage2_only",
            (
                *cli,
                "fit",
                *cfg("stage2"),
                "--model.init_args.init_from",
                EVALUATED["sft"],
                "--trainer.logger.init_args.name",
                "stage2_only",
                "--ckpt_path",
                "last",
                *steps_opt(sizes.stage2_steps),
            ),
            ("tiers",),
            _stage("stage2_only"),
        ),
    ]
    stage_of = {"sft": "sft", "stage1": "stage1", "stage2": "stage2", "stage2_only": "stage2_only"}
    limit = ("--data.init_args.test_limit", str(sizes.eval_limit)) if sizes.eval_limit is not None else ()
    for name, ckpt in EVALUATED.items():
        needs = (stage_of[name], "clip")
        steps.append(
            Step(
                f"eval_{name}",
                (
                    *cli,
                    "test",
                    *cfg("eval"),
                    "--model.init_args.init_from",
                    ckpt,
                    "--trainer.logger.init_args.name",
                    f"eval_{name}",
                    *limit,
                ),
                needs,
                _evaluated(name),
            )
        )
    steps.append(
        Step("report", (python, "-m", "pebr_lit.demo.report", "--run", "runs/demo"), tuple(s.name for s in steps))
    )
    return _by_priority(steps)


def _by_priority(steps: list[Step]) -> list[Step]:
    """Critical path first: the driver starts ready steps in this order."""
    order = [
        "assets",
        "data",
        "sft",
        "clip",
        "sample",
        "eval_sft",
        "tiers",
        "stage1",
        "stage2",
        "stage2_only",
        "eval_stage1",
        "eval_stage2_only",
        "eval_stage2",
        "report",
    ]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(steps, key=lambda s: rank.get(s.name, len(order)))
