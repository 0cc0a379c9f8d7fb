"""Benchmark: where the wall time of one GRPO training step goes (rollout, reward, log-probs, update).

Runs the real ``GRPOModule.training_step`` under a Lightning ``Trainer`` and times each phase by
wrapping the methods the step calls (``policy.generate``, ``score``, the frozen old/reference
log-prob passes, the policy forward, the loss, ``manual_backward``, gradient clipping and the
optimizer's ``step``), so the figures follow the module as it changes. A phase nested in another
counts for the outer one only; ``other`` is the step's time outside every phase (advantages,
logging). Steps after ``--warmup`` are averaged; the minimum is printed too, as the figure least
disturbed by other processes on a shared machine. With ``--reuse both`` it runs with and without
sharing each image's vision features across its rollouts, alternating ``--repeats`` times so that
both see the same background load, and prints the time ratios.

    python benchmarks/grpo_step.py                       # tiny model, 4 prompts x 8, 64 new tokens
    python benchmarks/grpo_step.py --model PATH --data FILE.jsonl --accelerator gpu --dtype bfloat16

Left out on purpose: memory figures, multi-device runs and the sglang rollout engine.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import lightning as L  # noqa: E402
import torch  # noqa: E402

PHASES = ("rollout", "reward", "old_logprobs", "ref_logprobs", "forward", "loss", "backward", "grad_clip", "optimizer")


def bare_trainer(accelerator: str, precision: str, max_steps: int, callbacks: list[L.Callback]) -> L.Trainer:
    """A one-device ``Trainer`` that only runs the steps: no logger, checkpoints, progress bar, summary, validation."""
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
    )


class PhaseTimer(L.Callback):
    """Wraps the step's methods with ``time.perf_counter`` and keeps one {phase: seconds} dict per step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.data_seconds: list[float] = []  # between one step's end and the next one's start (collate)
        self._current: dict[str, float] = defaultdict(float)
        self._active: str | None = None
        self._last_end: float | None = None

    def _timed(self, fn: Callable, phase: str | Callable[..., str]) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._active is not None:  # nested: already inside a timed phase
                return fn(*args, **kwargs)
            self._active = phase(*args, **kwargs) if callable(phase) else phase
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._current[self._active] += time.perf_counter() - start
                self._active = None

        return wrapper

    def on_train_start(self, trainer: L.Trainer, module: Any) -> None:
        module.policy.generate = self._timed(module.policy.generate, "rollout")
        module.score = self._timed(module.score, "reward")
        frozen = lambda *a, reference, **k: "ref_logprobs" if reference else "old_logprobs"  # noqa: E731
        module._frozen_logprobs = self._timed(module._frozen_logprobs, frozen)
        module._logprobs = self._timed(module._logprobs, "forward")
        module.loss = _CallableProxy(module.loss, self._timed(module.loss.__call__, "loss"))
        module.manual_backward = self._timed(module.manual_backward, "backward")
        module.clip_gradients = self._timed(module.clip_gradients, "grad_clip")
        for optimizer in trainer.optimizers:
            optimizer.step = self._timed(optimizer.step, "optimizer")

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        if self._last_end is not None:
            self.data_seconds.append(time.perf_counter() - self._last_end)
        self._current = defaultdict(float)
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._last_end = time.perf_counter()
        step = dict(self._current)
        step["total"] = self._last_end - self._step_start
        self.steps.append(step)


class _CallableProxy:
    """Stands in for ``module.loss``: calls go through the timer, attributes (``kl_coef``...) to the loss."""

    def __init__(self, target: Any, call: Callable) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_call", call)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)


def run(args: argparse.Namespace, model_path: str, data_file: str, clip_path: str | None, reuse: bool) -> PhaseTimer:
    """One training run of ``warmup + steps`` rollout batches; returns its per-step timings."""
    from callbacks.reference import ReferencePolicy
    from pebr_lit.clip.scorers import ClipScorer
    from pebr_lit.data.prompt_datamodule import PromptDataModule
    from pebr_lit.grpo.losses import GRPOLoss
    from pebr_lit.modules.perception import PerceptionGRPO
    from pebr_lit.modules.reasoning import ReasoningGRPO
    from pebr_lit.policy.settings import SamplingSettings
    from pebr_lit.policy.wrapper import PolicyWrapper
    from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward

    L.seed_everything(args.seed, verbose=False)
    policy = PolicyWrapper(model_path, dtype=args.dtype, freeze_vision=False, freeze_projector=False)
    if not reuse:
        policy.token_logprobs = functools.partial(policy.token_logprobs, reuse_image_features=False)
    perception = args.reward == "perception"
    stage = (
        functools.partial(PerceptionGRPO, clip_scorer=ClipScorer(model=clip_path), reward=PerceptionReward(length=0.0))
        if perception
        else functools.partial(ReasoningGRPO, reward=ReasoningReward())
    )
    module = stage(
        policy,
        loss=GRPOLoss(kl_coef=args.kl_coef),
        sampling=SamplingSettings(
            num_samples=args.group, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens
        ),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-5),
        mini_batches=args.mini_batches,
        micro_batch_size=args.micro_batch_size,
    )
    steps = args.warmup + args.steps
    data = PromptDataModule(train_files=[data_file], batch_size=args.prompts, epochs=1000.0, seed=args.seed)
    timer = PhaseTimer()
    callbacks: list[L.Callback] = [timer] + ([ReferencePolicy()] if args.kl_coef > 0 else [])
    trainer = bare_trainer(args.accelerator, "32-true", steps * args.mini_batches, callbacks)
    trainer.fit(module, data)
    if len(timer.steps) != steps:
        raise RuntimeError(f"expected {steps} training steps, timed {len(timer.steps)}; is the data file large enough?")
    return timer


def kept_steps(timer: PhaseTimer, warmup: int) -> tuple[list[dict[str, float]], list[float]]:
    """Per-step phase seconds after warm-up (``other`` filled in), and the loader's seconds between them."""
    kept = [dict(s) for s in timer.steps[warmup:]]
    for step in kept:
        step["other"] = step["total"] - sum(step.get(p, 0.0) for p in PHASES)
    return kept, timer.data_seconds[max(warmup - 1, 0) :]


def summarise(steps: list[dict[str, float]], data: list[float]) -> dict[str, dict[str, float]]:
    """``{"mean": {phase: s}, "min": {phase: s}}`` over ``steps``; ``data`` is the loader's mean."""
    names = (*PHASES, "other", "total")
    mean = {p: sum(s.get(p, 0.0) for s in steps) / len(steps) for p in names}
    low = {p: min(s.get(p, 0.0) for s in steps) for p in names}
    mean["data"] = sum(data) / len(data) if data else 0.0
    return {"mean": mean, "min": low}


def print_table(title: str, summary: dict[str, dict[str, float]], count: int) -> None:
    mean, low = summary["mean"], summary["min"]
    print(f"\n{title} ({count} steps)")
    print(f"  {'phase':<14}{'mean ms':>10}{'min ms':>10}{'share':>9}")
    for phase in (*PHASES, "other", "total"):
        print(f"  {phase:<14}{1000 * mean[phase]:>10.1f}{1000 * low[phase]:>10.1f}{mean[phase] / mean['total']:>9.1%}")
    print(f"  {'data':<14}{1000 * mean['data']:>10.1f}{'':>10}   (between steps: loader collate + Lightning)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="policy checkpoint directory; default: tiny assets built into a temp dir")
    parser.add_argument("--data", help="record file with prompts (JSONL...); default: a synthetic world in a temp dir")
    parser.add_argument("--clip", help="open_clip model dir for --reward perception; default: the tiny CLIP")
    parser.add_argument(
        "--reward",
        choices=("reasoning", "perception"),
        default="reasoning",
        help="stage-2 reward (accuracy + format) or stage-1 (CLIP + keyword + format)",
    )
    parser.add_argument("--prompts", type=int, default=4, help="prompts per rollout batch (B)")
    parser.add_argument("--group", type=int, default=8, help="responses per prompt (G)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest response in tokens")
    parser.add_argument("--micro-batch-size", type=int, default=32, help="rollouts per forward/backward pass")
    parser.add_argument(
        "--mini-batches", type=int, default=1, help="optimizer steps per rollout batch; > 1 adds old log-probs"
    )
    parser.add_argument(
        "--kl-coef", type=float, default=0.01, help="KL weight; > 0 adds the reference pass, 0 skips it"
    )
    parser.add_argument(
        "--reuse",
        choices=("on", "off", "both"),
        default="both",
        help="share each image's vision features across its G rollouts (on), not (off), or compare",
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting (alternating with --reuse both)")
    parser.add_argument("--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto")
    parser.add_argument("--dtype", default="float32", help="policy weight dtype: float32, bfloat16, float16, auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads; default: torch's choice")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.prompts < 1 or args.group < 2:
        parser.error("need --steps >= 1, --warmup >= 0, --repeats >= 1, --prompts >= 1 and --group >= 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="grpo_bench_") as tmp:
        model, clip = args.model, args.clip
        if model is None or (args.reward == "perception" and clip is None):
            from pebr_lit.demo.tiny import build_assets

            assets = build_assets(Path(tmp) / "assets", seed=args.seed)
            model, clip = model or str(assets["vlm"]), clip or str(assets["clip"])
        data = args.data
        if data is None:
            from pebr_lit.demo.synthetic import generate

            data = str(generate(Path(tmp) / "world", 64, seed=args.seed, split="train"))
        print(
            f"GRPO step on {model}: {args.prompts} prompts x {args.group} rollouts, "
            f"<= {args.max_new_tokens} new tokens, "
            f"micro-batch {args.micro_batch_size}, mini-batches {args.mini_batches}, kl_coef {args.kl_coef}, "
            f"reward {args.reward}, {args.accelerator}, torch threads {torch.get_num_threads()}; "
            f"{args.steps} timed steps after {args.warmup} warm-up, x{args.repeats} runs"
        )
        settings = {"on": [True], "off": [False], "both": [True, False]}[args.reuse]
        steps: dict[bool, list[dict[str, float]]] = {r: [] for r in settings}
        loader: dict[bool, list[float]] = {r: [] for r in settings}
        for _ in range(args.repeats):
            for reuse in settings:
                kept, data_s = kept_steps(run(args, model, data, clip, reuse), args.warmup)
                steps[reuse] += kept
                loader[reuse] += data_s
        results = {}
        for reuse in settings:
            results[reuse] = summarise(steps[reuse], loader[reuse])
            print_table(f"reuse_image_features={reuse}", results[reuse], len(steps[reuse]))
        if len(results) == 2:
            print("\nwithout / with reuse_image_features (time ratio)")
            print(f"  {'phase':<14}{'mean':>8}{'min':>8}")
            for phase in ("old_logprobs", "ref_logprobs", "forward", "backward", "total"):
                ratios = [
                    results[False][k][phase] / results[True][k][phase] if results[True][k][phase] > 0 else None
                    for k in ("mean", "min")
                ]
                print(f"  {phase:<14}" + "".join(f"{r:>7.2f}x" if r is not None else f"{'n/a':>8}" for r in ratios))


if __name__ == "__main__":
    main()
