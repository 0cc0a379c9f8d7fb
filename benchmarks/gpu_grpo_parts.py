"""Pieces of ``gpu_grpo.py``: the random 7B builder, a fixed-length rollout engine, a toy reward, memory per phase.

``build_random_vlm`` writes Qwen2.5-VL-7B's architecture (``real_model``: the planner's shape table of the
released checkpoints) with random weights and an offline processor; ``shrink`` keeps the vocabulary and every
kind of layer but makes the widths and depths tiny, so the dry run on CPU goes through the same builder.
``MemoryPhaseTimer`` is ``grpo_step.PhaseTimer`` that also synchronises CUDA at each phase's ends (so the
times are the GPU's, not the launches') and keeps each phase's peak allocated and reserved memory.

Left out on purpose: the run itself (``gpu_grpo.py``) and the step phases' definition (``grpo_step.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from grpo_step import PhaseTimer
from real_model import offline_processor, qwen2_5_vl_config

from pebr_lit.plan.shapes import SHAPES
from pebr_lit.rewards.stages import StageReward
from pebr_lit.rollout.hf import HFGenerate

GB = 1024**3

QWEN2_5_VL_7B = "Qwen/Qwen2.5-VL-7B-Instruct"  # its shapes: pebr_lit.plan.shapes.SHAPES


def qwen2_5_vl_7b_config(tokenizer: Any, shrink: bool = False) -> Any:
    """Qwen2.5-VL-7B's ``Qwen2_5_VLConfig`` (or the ``shrink``-ed twin's) with ``tokenizer``'s special-token ids.

    ``shrink``: the dry run's widths and depths (vocabulary, patching and window sizes stay the 7B's; one vision
    block of each kind).
    """
    shapes = SHAPES[QWEN2_5_VL_7B]
    if not shrink:
        return qwen2_5_vl_config(shapes, tokenizer)
    vision = dataclasses.replace(shapes.vision, depth=2, hidden=32, intermediate=64, heads=2, out_hidden=64)
    small = dataclasses.replace(shapes, layers=2, hidden=64, intermediate=128, heads=4, kv_heads=2, vision=vision)
    return qwen2_5_vl_config(small, tokenizer, full_attention_blocks=[1])


def build_random_vlm(
    out_dir: Path, seed: int = 0, device: str = "cuda", dtype: torch.dtype = torch.bfloat16, shrink: bool = False
) -> tuple[Path, dict[str, float]]:
    """Save a random Qwen2.5-VL-7B (or its ``shrink``-ed twin) and an offline processor; returns (dir, seconds).

    The weights are initialised on ``device`` (8 B parameters on the GPU take seconds, on CPU minutes), then
    saved as ``dtype`` safetensors (bf16: 16.6 GB) and freed, so that loading goes through the real path.
    """
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from pebr_lit.demo.synthetic import corpus
    from pebr_lit.demo.tiny import SPECIAL_TOKENS, SUPPRESSED_TOKENS, build_tokenizer

    timings: dict[str, float] = {}
    tokenizer = build_tokenizer(corpus(600, seed=seed), vocab_size=512)  # text ids < 512; the vocab stays 152064
    config = qwen2_5_vl_7b_config(tokenizer, shrink=shrink)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timings["init_s"] = time.perf_counter() - start
    model.generation_config = GenerationConfig(
        bos_token_id=eot,
        eos_token_id=[im_end, eot],
        pad_token_id=eot,
        suppress_tokens=[ids[t] for t in SUPPRESSED_TOKENS],
    )
    processor = offline_processor(tokenizer)
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    timings["save_s"] = time.perf_counter() - start
    timings["saved_gb"] = sum(f.stat().st_size for f in out_dir.glob("*.safetensors")) / GB
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out_dir, timings


class ToyReward(StageReward):
    """A seeded random reward in [0, 1] per response: groups always vary, and no answer grader is needed."""

    def __init__(self, seed: int = 0) -> None:
        """
        Args:
            seed: seed of the reward's own generator.
        """
        super().__init__(None, noise=1.0)
        self._generator = torch.Generator().manual_seed(seed)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        return {"noise": torch.rand(len(responses), generator=self._generator).tolist()}


class FixedLengthGenerate(HFGenerate):
    """``HFGenerate`` whose end-of-response tokens are held back until ``max_new_tokens``: every rollout is full.

    It sets ``min_new_tokens`` on the model's generation config for the call (Hugging Face then masks the end
    tokens' logits), so ``PolicyWrapper.generate`` is the one that samples. ``last_lengths`` holds the response
    lengths of the last call, to check that it worked.
    """

    def __init__(self, prompts_per_call: int | None = None) -> None:
        super().__init__(prompts_per_call)
        self.last_lengths: list[int] = []

    def generate(self, policy: Any, prompts: dict[str, torch.Tensor], records: Sequence[Any], sampling: Any) -> Any:
        config = policy.model.generation_config
        before = config.min_new_tokens
        config.min_new_tokens = sampling.max_new_tokens
        try:
            rollout = super().generate(policy, prompts, records, sampling)
        finally:
            config.min_new_tokens = before
        self.last_lengths = rollout.response_mask.sum(dim=1).tolist()  # [B*G]
        return rollout


class MemoryPhaseTimer(PhaseTimer):
    """``PhaseTimer`` plus CUDA synchronisation at each outermost phase's ends and that phase's memory peaks.

    ``peaks[phase]`` is ``[max allocated, max reserved]`` in bytes over the steps (peaks reset as a phase
    starts, so each includes what was resident then: weights, optimizer state, the phase's own tensors).
    """

    def __init__(self, cuda: bool) -> None:
        super().__init__()
        self.cuda = cuda
        self.peaks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.step_peaks: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # this step's only
        self._depth = 0

    def _timed(self, fn: Callable, phase: str | Callable[..., str]) -> Callable:
        return super()._timed(self._measured(fn), phase)

    def _measured(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            outer = self.cuda and self._depth == 1
            if outer:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            try:
                return fn(*args, **kwargs)
            finally:
                if outer:
                    torch.cuda.synchronize()
                    now = (torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved())
                    for store in (self.peaks, self.step_peaks):
                        peak = store[self._active]
                        peak[0], peak[1] = max(peak[0], now[0]), max(peak[1], now[1])
                self._depth -= 1

        return wrapper

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        self.step_peaks = defaultdict(lambda: [0, 0])
        super().on_train_batch_start(trainer, module, batch, batch_idx)


PHASE_GROUPS = {
    "rollout": ("rollout",),
    "logprobs": ("old_logprobs", "ref_logprobs"),
    "update": ("forward", "loss", "backward", "grad_clip", "optimizer"),
}


def phase_groups(peaks: dict[str, list[int]]) -> dict[str, dict[str, float | None]]:
    """Peaks (GB) of the rollout, the frozen log-prob passes, the update and all of them; None where unmeasured."""
    out: dict[str, dict[str, float | None]] = {}
    for group, names in {**PHASE_GROUPS, "all": tuple(peaks)}.items():
        seen = [peaks[n] for n in names if n in peaks]
        out[group] = {
            "allocated_gb": max(p[0] for p in seen) / GB if seen else None,
            "reserved_gb": max(p[1] for p in seen) / GB if seen else None,
        }
    return out


def gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:7.2f} GB"


class StepRecorder(L.Callback):
    """After each step: the step's shapes, times and peaks go into ``report`` and out through ``write``.

    With ``deadline`` (a ``time.perf_counter()`` value) it stops the fit before a step that would end past it
    (the last step's time as the guess), so a slow step leaves the time for the report and the planner.
    """

    def __init__(
        self, timer: MemoryPhaseTimer, engine: FixedLengthGenerate, report: dict, args: Any, write: Callable
    ) -> None:
        self.timer, self.engine, self.report, self.args, self.write = timer, engine, report, args, write

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        ids = batch["prompts"]["input_ids"]  # [B, P]
        image_id = module.policy.model.config.image_token_id
        self.report["shapes"].update(
            prompts=int(ids.shape[0]),
            group=module.sampling.num_samples,
            prompt_tokens=int(ids.shape[1]),
            image_tokens_per_prompt=int((ids[0] == image_id).sum()),
            micro_batch_size=module.micro_batch_size,
        )

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        lengths = self.engine.last_lengths
        shapes = self.report["shapes"]
        shapes["response_tokens_mean"] = sum(lengths) / len(lengths)
        shapes["responses_full_length"] = all(n == self.args.max_new_tokens for n in lengths)
        step = {k: round(v, 4) for k, v in self.timer.steps[-1].items()}
        peaks = {k: {"allocated_gb": v[0] / GB, "reserved_gb": v[1] / GB} for k, v in self.timer.step_peaks.items()}
        self.report["steps"].append({"seconds": step, "memory": peaks, "response_lengths": lengths})
        self.report["memory_groups"] = phase_groups(self.timer.peaks)
        self.write()
        top = self.report["memory_groups"]["all"]
        print(
            f"step {len(self.timer.steps)}: {step['total']:.1f} s (rollout {step.get('rollout', 0):.1f} s), "
            f"responses {min(lengths)}-{max(lengths)} tokens, peak allocated {gb(top['allocated_gb'])}, "
            f"reserved {gb(top['reserved_gb'])}",
            flush=True,
        )
        deadline = self.args.deadline
        if deadline is not None and time.perf_counter() + step["total"] > deadline:
            print(f"budget: stopping after {len(self.timer.steps)} steps (one more would pass --budget-s)", flush=True)
            trainer.should_stop = True
