"""Benchmark: one stage-2 QLoRA GRPO run on Qwen2.5-VL-7B's full architecture (random weights), memory and speed.

Builds the 7B's exact shapes from a config written here (no download: transformers' ``Qwen2_5_VLConfig()``
defaults are not the 7B's), with random bf16 weights made on the GPU, saves them to a temp dir, and loads them
through ``PolicyWrapper`` with the QLoRA card's settings (``configs/qwen2_5_vl_7b/_qlora_24gb.yaml`` over
``_lora_80gb.yaml``: nf4 + double quant, bf16 compute, LoRA r 64 / alpha 128 on the language model, gradient
checkpointing, ``bf16-mixed``). It then runs ``ReasoningGRPO.training_step`` under a Lightning ``Trainer``
with the stage-2 loss (clip 0.2 / 0.3, dual-clip 3, k3 KL 0.01 to the adapter-free base, micro-batch 4),
a random toy reward (no answer grader), one 896 x 896 image per prompt (1,024 image tokens at ``max_pixels``
802816) and every response forced to ``--max-new-tokens`` (end tokens held back). It prints and writes to
``--out/gpu_grpo.json``, after every step: peak CUDA memory (allocated and reserved) per phase, the step's
time breakdown (``benchmarks/grpo_step.py``'s phases), rollout and training tokens/s, and the memory
planner's estimate for the same shapes when ``pebr_lit.plan`` exists.

    python benchmarks/gpu_grpo.py --out $OUT                 # CUDA: what benchmarks/gpu_check.sh runs
    python benchmarks/gpu_grpo.py --dry-run --out /tmp/dry   # the same logic, shrunk model on CPU

``--dry-run`` uses a shrunk twin (the same builder, vocabulary, patching and 1,024-pixel windows; tiny widths
and depths), fp32, LoRA without 4-bit (bitsandbytes' CPU backward breaks after a ``generate``,
``../shared/DEPENDENCIES.md``), 112 x 112 images, 16-token responses, and RSS instead of CUDA memory.

Left out on purpose: the rollout engines other than HF generate, several GPUs, real weights and rewards.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # grpo_step's timer, also when imported from elsewhere

import lightning as L  # noqa: E402
import torch  # noqa: E402
from gpu_grpo_parts import (  # noqa: E402
    FixedLengthGenerate,
    MemoryPhaseTimer,
    StepRecorder,
    ToyReward,
    build_random_vlm,
    gb,
    phase_groups,
)
from grpo_step import bare_trainer, kept_steps, print_table, summarise  # noqa: E402
from real_model import MAX_PIXELS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLANNER_CONFIG = ROOT / "configs" / "qwen2_5_vl_7b" / "stage2_qlora_24gb.yaml"
GB = 1024**3


def build_policy(args: argparse.Namespace, work: Path) -> tuple[Any, Path, dict[str, float]]:
    """The policy and its data file; on GPU the 7B is built, saved and loaded 4-bit (timed), on CPU the tiny one."""
    from pebr_lit.demo.synthetic import generate
    from pebr_lit.policy.settings import LoraSettings, QuantizationSettings
    from pebr_lit.policy.wrapper import PolicyWrapper

    lora = LoraSettings(r=64, alpha=128, dropout=0.05, language_model_only=True)  # _lora_80gb.yaml
    data = generate(work / "world", 16, seed=args.seed, split="train", image_size=args.image_size)
    if args.dry_run:
        model_dir, timings = build_random_vlm(
            work / "qwen2_5_vl_shrunk", seed=args.seed, device="cpu", dtype=torch.float32, shrink=True
        )
        quantization, dtype = None, "float32"
    else:
        model_dir, timings = build_random_vlm(work / "qwen2_5_vl_7b_random", seed=args.seed)
        quantization = QuantizationSettings(quant_type="nf4", double_quant=True, compute_dtype="bfloat16")
        dtype = "bfloat16"
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    policy = PolicyWrapper(
        str(model_dir),
        dtype=dtype,
        gradient_checkpointing=True,
        lora=lora,
        quantization=quantization,
        max_pixels=MAX_PIXELS,
    )
    timings["load_s"] = time.perf_counter() - start
    return policy, data, timings


def run(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    from callbacks.reference import ReferencePolicy
    from pebr_lit.data.prompt_datamodule import PromptDataModule
    from pebr_lit.grpo.aggregation import MicroBatchTokenMean
    from pebr_lit.grpo.kl import K3
    from pebr_lit.grpo.losses import ClippedSurrogate, GRPOLoss
    from pebr_lit.modules.reasoning import ReasoningGRPO
    from pebr_lit.policy.settings import SamplingSettings

    cuda = torch.cuda.is_available() and not args.dry_run
    L.seed_everything(args.seed, verbose=False)
    policy, data_file, timings = build_policy(args, work)
    report["timings"] = timings
    report["model"] = {
        "parameters": sum(p.numel() for p in policy.model.parameters()),
        "trainable_parameters": sum(p.numel() for p in policy.model.parameters() if p.requires_grad),
        "quantization": policy.describe()["quantization"],
        "lora": policy.describe()["lora"],
    }
    if cuda:
        report["memory_after_load_gb"] = torch.cuda.memory_allocated() / GB
    print(f"policy loaded: {json.dumps(report['model'])}; timings {json.dumps(timings)}", flush=True)
    write_report(args.out, report)
    engine = FixedLengthGenerate(prompts_per_call=args.prompts)
    module = ReasoningGRPO(
        policy,
        reward=ToyReward(seed=args.seed),
        loss=GRPOLoss(
            policy_loss=ClippedSurrogate(eps_low=0.2, eps_high=0.3, dual_clip_c=3.0),
            kl=K3(),
            kl_coef=0.01,
            aggregation=MicroBatchTokenMean(),
        ),
        sampling=SamplingSettings(
            num_samples=args.group, temperature=1.2, top_p=0.99, max_new_tokens=args.max_new_tokens
        ),
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01),
        micro_batch_size=args.micro_batch_size,
        gradient_clip_val=1.0,
        rollout_engine=engine,
    )
    timer = MemoryPhaseTimer(cuda=cuda)
    recorder = StepRecorder(timer, engine, report, args, write=lambda: write_report(args.out, report))
    data = PromptDataModule(train_files=[str(data_file)], batch_size=args.prompts, epochs=1000.0, seed=args.seed)
    trainer = bare_trainer(
        "gpu" if cuda else "cpu",
        "bf16-mixed" if cuda else "32-true",
        args.warmup + args.steps,
        [timer, recorder, ReferencePolicy()],
    )
    lora_before = {n: p.detach().clone() for n, p in policy.model.named_parameters() if "lora_B" in n}
    trainer.fit(module, data)
    report["adapters_changed"] = any(
        not torch.equal(lora_before[n], p.detach()) for n, p in policy.model.named_parameters() if n in lora_before
    )
    finish(timer, args, report)


def finish(timer: MemoryPhaseTimer, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Summaries over the timed steps (all steps when none came after warm-up), printed and stored."""
    warmup = args.warmup if len(timer.steps) > args.warmup else 0
    kept, data_s = kept_steps(timer, warmup)
    if not kept:
        return
    summary = summarise(kept, data_s)
    print_table(f"step time, {'after ' + str(warmup) + ' warm-up' if warmup else 'all steps'}", summary, len(kept))
    shapes = report["shapes"]
    sequences = shapes["prompts"] * shapes["group"]
    rollout_tokens = sequences * shapes["response_tokens_mean"]
    train_tokens = sequences * (shapes["prompt_tokens"] + shapes["response_tokens_mean"])
    mean = summary["mean"]
    train_s = sum(mean[p] for p in ("ref_logprobs", "old_logprobs", "forward", "loss", "backward", "optimizer"))
    report["step_time_s"] = summary
    report["rollout_tokens_per_s"] = rollout_tokens / mean["rollout"] if mean["rollout"] else None
    # Tokens that pass through the log-prob/update passes (prompt + response of every rollout) per second of them.
    report["training_tokens_per_s"] = train_tokens / train_s if train_s else None
    report["memory_groups"] = phase_groups(timer.peaks)
    print(f"rollout tokens/s {report['rollout_tokens_per_s']:.1f} ({sequences} x {shapes['response_tokens_mean']:.0f})")
    print(f"training tokens/s {report['training_tokens_per_s']:.1f} ({sequences} x {train_tokens // sequences:.0f})")
    for group, peak in report["memory_groups"].items():
        print(f"peak memory {group:<9} allocated {gb(peak['allocated_gb'])}, reserved {gb(peak['reserved_gb'])}")


def planner(args: argparse.Namespace, report: dict[str, Any], work: Path) -> None:
    """The planner's estimate for the same shapes (an overlay of the QLoRA stage-2 config), or a line saying none."""
    if importlib.util.find_spec("pebr_lit.plan") is None:
        print("planner: not available")
        report["planner"] = {"available": False}
        return
    shapes = report.get("shapes", {})
    overlay = work / "planner_overlay.yaml"
    overlay.write_text(
        f"# overlay-of: {os.path.relpath(PLANNER_CONFIG, work)}\n"
        "model:\n  init_args:\n"
        f"    micro_batch_size: {args.micro_batch_size}\n"
        f"    sampling:\n      max_new_tokens: {args.max_new_tokens}\n"
        "    rollout_engine:\n      class_path: pebr_lit.rollout.hf.HFGenerate\n"
        f"      init_args:\n        prompts_per_call: {args.prompts}\n"
        f"data:\n  init_args:\n    batch_size: {args.prompts}\n"
        f"    max_prompt_length: {max(int(shapes.get('prompt_tokens', 2048)), 1)}\n"
    )
    gpu_gb = torch.cuda.get_device_properties(0).total_memory / GB if torch.cuda.is_available() else 24.0
    command = [sys.executable, "-m", "pebr_lit.plan", "--config", str(overlay), "--gpu-gb", f"{gpu_gb:.0f}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=40, cwd=ROOT)
        output, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        output, rc = "planner timed out after 40 s", None
    print(f"planner ({' '.join(command[1:])}; rc {rc}):\n{output}")
    report["planner"] = {"available": True, "command": command[1:], "rc": rc, "output": output}


def write_report(out: Path, report: dict[str, Any]) -> None:
    report["cpu_peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # Linux: KiB
    tmp = out / "gpu_grpo.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(out / "gpu_grpo.json")  # a kill mid-write leaves the last whole report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")), help="folder for gpu_grpo.json")
    parser.add_argument("--dry-run", action="store_true", help="tiny model on CPU, LoRA without 4-bit, 16 tokens")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per rollout batch (B)")
    parser.add_argument("--group", type=int, default=8, help="responses per prompt (G)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="every response's length; default 1024 (16)")
    parser.add_argument("--micro-batch-size", type=int, default=4, help="rollouts per forward/backward (authors: 4)")
    parser.add_argument("--image-size", type=int, default=None, help="image side in px; default 896 (112 dry-run)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="steps first, left out of the summary")
    parser.add_argument("--budget-s", type=float, default=None, help="start no step that would end past this")
    parser.add_argument("--workdir", type=Path, default=None, help="where the random checkpoint goes; default a temp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.max_new_tokens = args.max_new_tokens or (16 if args.dry_run else 1024)
    args.image_size = args.image_size or (112 if args.dry_run else 896)
    if args.steps < 1 or args.warmup < 0 or args.prompts < 1 or args.group < 2:
        parser.error("need --steps >= 1, --warmup >= 0, --prompts >= 1 and --group >= 2")
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or pass --dry-run for the tiny model on CPU")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.deadline = time.perf_counter() + args.budget_s if args.budget_s else None
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "mode": "dry-run" if args.dry_run else "gpu",
        "status": "started",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.dry_run else "cpu",
        "versions": _versions(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "deadline"},
        "shapes": {},
        "steps": [],
    }
    print(f"gpu_grpo: {report['mode']} on {report['device']}; {json.dumps(report['settings'])}", flush=True)
    write_report(args.out, report)
    code = 0
    with tempfile.TemporaryDirectory(prefix="gpu_grpo_", dir=args.workdir) as tmp:
        try:
            run(args, Path(tmp), report)
            report["status"] = "ok" if report.get("step_time_s") else "no step finished"
        except Exception as err:  # the figures so far still go out, with the error beside them
            traceback.print_exc()
            report["status"], report["error"], code = "failed", f"{type(err).__name__}: {err}"[:2000], 1
            if torch.cuda.is_available():  # since the last phase began: an OOM's attempt shows here
                report["max_allocated_gb_at_error"] = torch.cuda.max_memory_allocated() / GB
        planner(args, report, Path(tmp))
        write_report(args.out, report)
    print(f"gpu_grpo: {report['status']}; report in {args.out / 'gpu_grpo.json'}")
    return code


def _versions() -> dict[str, str | None]:
    names = ("torch", "transformers", "peft", "lightning", "bitsandbytes")
    found = {}
    for name in names:
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    found["cuda"] = torch.version.cuda
    return found


if __name__ == "__main__":
    sys.exit(main())
