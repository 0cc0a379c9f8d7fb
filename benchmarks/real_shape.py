"""Benchmark: Qwen2.5-VL-3B/7B at their real widths and vocabulary, depth cut, through pebr-lit's real code path on CPU.

Builds the exact architecture from config with random weights (no download), keeps the real hidden
sizes, heads and vocabulary (151,936 / 152,064) but only ``--layers`` decoder layers and
``--vision-blocks`` vision blocks, saves it with a Qwen2.5-VL processor built offline (the tiny demo
tokenizer: only ids and lengths matter; images at ``max_pixels`` 802,816, so 896x896 gives 1,024 image
tokens), loads it through ``PolicyWrapper`` with the LoRA settings of ``configs/qwen2_5_vl_7b/_lora_80gb.yaml``
and runs, phase by phase: the processor, the vision tower, ``generate`` (a few tokens), the frozen
log-prob pass and one LoRA GRPO loss + backward at a forced response length R, each with today's
logits path and with ``logprob_chunk_tokens``. Per phase it prints wall time and memory: the process's
resident set size (RSS, sampled every 2 ms on a thread; glibc is made to return every block over
1 MiB to the OS on free, so RSS follows live tensors) at the start, its peak, and the peak's rise
above the start. ``--depths 1,2`` runs each depth in its own process and prints the per-layer
difference and its extrapolation to the full depth.

    python benchmarks/real_shape.py --size 7b                      # 2 layers, 2 vision blocks
    python benchmarks/real_shape.py --size 3b --depths 1,2 --json out.json

Beside each phase it prints what the memory planner predicts the phase adds (``plan_compare.py``).

Left out on purpose: the planner's arithmetic (``pebr_lit.plan``), GPUs, QLoRA (``tests/smoke/test_qlora_grpo_cpu.py``
trains it on the tiny model; bitsandbytes' CPU 4-bit kernels at these widths would measure bitsandbytes), the
reference copy and CLIP scoring.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MMAP_THRESHOLD = str(1 << 20)  # bytes; fixed, so glibc's dynamic threshold cannot keep freed tensors resident
if os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:  # read by glibc at start only: re-exec
    os.environ["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
    os.execv(sys.executable, [sys.executable, *sys.argv])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from plan_compare import comparison_rows, cut, full_depth_rows, planned, shape_args  # noqa: E402
from real_model import MAX_PIXELS, offline_processor, qwen2_5_vl_config  # noqa: E402

from pebr_lit.plan.shapes import SHAPES  # noqa: E402

#: The sizes built, by their hub ids in the planner's table of published architectures.
SIZES = {"3b": "Qwen/Qwen2.5-VL-3B-Instruct", "7b": "Qwen/Qwen2.5-VL-7B-Instruct"}
GIB = 1 << 30
LORA_DROPOUT = 0.05  # configs/qwen2_5_vl_7b/_lora_80gb.yaml


class RssMeter:
    """Per-phase wall time and RSS (start, peak, end) of this process, the peak sampled on a thread."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.phases: dict[str, dict[str, float]] = {}
        self._peak = 0
        self._stop = threading.Event()
        self.base = self.rss()  # Python + torch + transformers, before any model exists
        threading.Thread(target=self._sample, daemon=True).start()

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss())
            time.sleep(self.interval_s)

    @contextmanager
    def phase(self, name: str):
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the start is what is live
        start = self.rss()
        self._peak = start
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        end = self.rss()
        peak = max(self._peak, end)
        self.phases[name] = dict(seconds=seconds, rss_start=start, rss_peak=peak, rise=peak - start, rss_end=end)
        rss = f"rss {start / GIB:6.2f} -> peak {peak / GIB:6.2f} GiB  (+{(peak - start) / GIB:.2f})"
        print(f"  {name:<24} {seconds:8.2f} s   {rss}", flush=True)


def build_checkpoint(out: Path, size: str, layers: int, vision_blocks: int, seed: int) -> dict[str, Any]:
    """Save a random Qwen2.5-VL of ``size``'s widths at the cut depth, with an offline processor, to ``out``."""
    import dataclasses

    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from pebr_lit.demo.tiny import SPECIAL_TOKENS, SUPPRESSED_TOKENS, build_tokenizer

    full = SHAPES[SIZES[size]]
    shapes = dataclasses.replace(full, layers=layers, vision=dataclasses.replace(full.vision, depth=vision_blocks))
    tokenizer = build_tokenizer(["Describe the figure, then answer the question.", "system\nuser\nassistant\n"])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = qwen2_5_vl_config(shapes, tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"]],
        pad_token_id=ids["<|endoftext|>"],
        suppress_tokens=[ids[t] for t in SUPPRESSED_TOKENS],
    )
    processor = offline_processor(tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return dict(parameters=model.num_parameters(), lm_head_tied=shapes.tied)


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One depth in this process: build, load, then every phase; returns the figures."""
    from PIL import Image

    from pebr_lit.data.collate import encode_prompts
    from pebr_lit.grpo.aggregation import TokenMean
    from pebr_lit.grpo.losses import ClippedSurrogate
    from pebr_lit.policy.settings import LoraSettings, SamplingSettings
    from pebr_lit.policy.wrapper import PolicyWrapper

    torch.set_num_threads(args.threads)
    meter = RssMeter()
    result: dict[str, Any] = dict(size=args.size, layers=args.layers, vision_blocks=args.vision_blocks)
    result.update(rows=args.rows, response_len=args.response_len, new_tokens=args.new_tokens)
    result.update(chunk_tokens=args.chunk_tokens, lora_dropout=LORA_DROPOUT, checkpointing=not args.no_checkpointing)
    shape = f"{args.layers} layers, {args.vision_blocks} vision blocks, {args.rows} rows x R={args.response_len}"
    print(f"{args.size}: {shape}", flush=True)
    with tempfile.TemporaryDirectory(prefix="real_shape_") as tmp:
        with meter.phase("build+save"):
            result.update(build_checkpoint(Path(tmp), args.size, args.layers, args.vision_blocks, args.seed))
        gc.collect()
        with meter.phase("weights resident"):  # loaded, then every page of the memory-mapped weights touched
            lora = LoraSettings(r=64, alpha=128, dropout=LORA_DROPOUT, language_model_only=True)
            policy = PolicyWrapper(
                tmp,
                dtype="bfloat16",
                gradient_checkpointing=not args.no_checkpointing,
                lora=lora,
                max_pixels=MAX_PIXELS,
            )
            with torch.no_grad():
                for param in policy.model.parameters():
                    param.view(-1)[:: max(1, 4096 // param.element_size())].sum()  # one element per 4 KiB page
        image = Image.fromarray(torch.randint(0, 256, (896, 896, 3), dtype=torch.uint8).numpy())
        with meter.phase("processor"):
            prompts = encode_prompts(policy.processor, ["What is the area of the shaded region?"], [[image]])
        image_tokens = int((prompts["input_ids"] == policy.model.config.image_token_id).sum())
        result.update(image_tokens=image_tokens, prompt_tokens=int(prompts["input_ids"].shape[1]))
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)  # the configs' bf16-mixed
        with meter.phase("vision tower"), torch.no_grad(), autocast:
            policy.model.get_image_features(prompts["pixel_values"], prompts["image_grid_thw"])
        with meter.phase("generate"), autocast:
            sampling = SamplingSettings(num_samples=args.rows, max_new_tokens=args.new_tokens)
            rollout = policy.generate(prompts, sampling)
        result["generated_tokens"] = int(rollout.response_mask.sum())
        gen = torch.Generator().manual_seed(args.seed)
        ids = torch.randint(16, SHAPES[SIZES[args.size]].vocab, (args.rows, args.response_len), generator=gen)  # [N, R]
        mask = torch.ones_like(ids)  # [N, R]: every position scored, the forced length
        advantages = torch.randn(args.rows, generator=gen)  # [N]
        loss_fn, mean = ClippedSurrogate(), TokenMean()
        scores: dict[str, torch.Tensor] = {}
        paths = [("logits", None), ("chunked", args.chunk_tokens)]
        for path, chunk in reversed(paths) if args.chunked_first else paths:  # order swapped: warm-up, load
            policy.logprob_chunk_tokens = chunk
            with meter.phase(f"logprobs no-grad {path}"), torch.no_grad(), autocast:
                old, _ = policy.token_logprobs(prompts, ids, mask, num_samples=args.rows)
            scores[f"old_{path}"] = old
            torch.manual_seed(args.seed)  # the same LoRA dropout masks in both paths
            with meter.phase(f"train forward {path}"), autocast:
                new, entropy = policy.token_logprobs(  # the entropy only logged, as GRPOModule at entropy_coef 0
                    prompts, ids, mask, num_samples=args.rows, with_entropy=True, entropy_grad=False
                )
                per_token, _ = loss_fn(new, old.detach(), advantages, mask.bool())
                loss = mean(per_token, mask.bool())
            with meter.phase(f"train backward {path}"):
                loss.backward()
            scores[f"new_{path}"] = new.detach()
            grads = [p.grad.float().flatten() for p in policy.model.parameters() if p.grad is not None]
            scores[f"grad_{path}"] = torch.cat(grads)
            policy.model.zero_grad(set_to_none=True)
            del new, entropy, loss, per_token, grads
    result["phases"] = meter.phases
    result["rss_base"] = meter.base
    result["planned"] = planned(
        SIZES[args.size], cut(SHAPES[SIZES[args.size]], args.layers, args.vision_blocks), **shape_args(result)
    )
    result["max_abs_diff"] = {
        "logprobs no-grad": float((scores["old_logits"] - scores["old_chunked"]).abs().max()),
        "logprobs grad": float((scores["new_logits"] - scores["new_chunked"]).abs().max()),
        "lora grad (relative)": float(
            (scores["grad_logits"] - scores["grad_chunked"]).norm() / scores["grad_logits"].norm()
        ),
    }
    tokens = f"prompt {result['prompt_tokens']} tokens, generated {result['generated_tokens']}"
    print(f"  image tokens {image_tokens}, {tokens}")
    print(f"  logits vs chunked: {result['max_abs_diff']}")
    return result


def per_layer(runs: list[dict[str, Any]], full_layers: int) -> dict[str, dict[str, float]]:
    """Per phase: the figure per decoder layer (difference of the two depths) and its extrapolation to full depth."""
    depths = sorted({r["layers"] for r in runs})
    lo, hi = depths[0], depths[-1]
    out = {}
    for name in runs[0]["phases"]:
        row = {}
        for key in ("seconds", "rss_peak", "rise"):
            mean = {
                d: sum(r["phases"][name][key] for r in runs if r["layers"] == d) / sum(r["layers"] == d for r in runs)
                for d in (lo, hi)
            }
            step = (mean[hi] - mean[lo]) / (hi - lo)
            row[f"{key}_per_layer"] = step
            row[f"{key}_full_depth"] = mean[hi] + (full_layers - hi) * step
        out[name] = row
    return out


def _span(values: list[float], scale: float) -> str:
    return f"{min(values) / scale:.2f}..{max(values) / scale:.2f}"


def print_summary(runs: list[dict[str, Any]], extrapolated: dict[str, dict[str, float]], full_layers: int) -> None:
    """A table per phase: min..max over the runs at each depth, the per-layer step and the full-depth extrapolation."""
    depths = sorted({r["layers"] for r in runs})
    print("\nmin..max over the runs at each depth; per layer = difference of the depths' means; GiB of RSS")
    cols = "".join(f" | L={d} peak | L={d} rise | L={d} s" for d in depths)
    print(f"| phase{cols} | rise/layer | s/layer | L={full_layers} peak (extrapolated) |")
    for name in runs[0]["phases"]:
        cells = ""
        for d in depths:
            at = [r["phases"][name] for r in runs if r["layers"] == d]
            peaks, rises, secs = ([x[k] for x in at] for k in ("rss_peak", "rise", "seconds"))
            cells += f" | {_span(peaks, GIB)} | {_span(rises, GIB)} | {_span(secs, 1)}"
        e = extrapolated[name]
        step = f"{e['rise_per_layer'] / GIB:.3f} | {e['seconds_per_layer']:.2f}"
        print(f"| {name}{cells} | {step} | {e['rss_peak_full_depth'] / GIB:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="7b", help="Qwen2.5-VL size whose widths are built")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers kept")
    parser.add_argument(
        "--vision-blocks",
        type=int,
        default=2,
        help="vision blocks kept (windowed; the full-attention ones are 7, 15, 23, 31)",
    )
    parser.add_argument(
        "--depths", default=None, help="comma-separated --layers values, each run in its own process (e.g. 1,2)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per depth with --depths")
    parser.add_argument("--rows", type=int, default=2, help="responses per micro-batch, all answering one image prompt")
    parser.add_argument(
        "--response-len", type=int, default=256, help="forced response length R of the scored responses"
    )
    parser.add_argument("--new-tokens", type=int, default=4, help="tokens generate samples per row")
    parser.add_argument("--chunk-tokens", type=int, default=256, help="logprob_chunk_tokens of the chunked path")
    parser.add_argument("--chunked-first", action="store_true", help="run the chunked path before the logits path")
    parser.add_argument("--no-checkpointing", action="store_true", help="train without gradient checkpointing")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.depths is None:
        result = run_once(args)
        print("\n".join(comparison_rows([result])))
    else:
        runs = []
        for repeat in range(args.repeats):
            for depth in (int(d) for d in args.depths.split(",")):
                with tempfile.NamedTemporaryFile(suffix=".json") as f:
                    cmd = [sys.executable, __file__, *_passthrough(argv), "--layers", str(depth), "--json", f.name]
                    cmd += ["--chunked-first"] if repeat % 2 else []
                    subprocess.run(cmd, check=True)
                    runs.append(json.loads(Path(f.name).read_text()))
        full = SHAPES[SIZES[args.size]].layers
        result = dict(runs=runs, per_layer=per_layer(runs, full), full_layers=full)
        print_summary(runs, result["per_layer"], full)
        print("\nwhat each phase adds, measured (RSS) and planned (pebr_lit.plan, device cpu)")
        print("\n".join(comparison_rows(runs)))
        print("\nfull depth, GiB above the start-up RSS")
        print("\n".join(full_depth_rows(runs, SHAPES[SIZES[args.size]], SIZES[args.size], **shape_args(runs[0]))))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _passthrough(argv: list[str] | None) -> list[str]:
    """This run's arguments without the ones the driver sets per child."""
    out, skip = [], False
    for arg in sys.argv[1:] if argv is None else argv:
        if skip:
            skip = False
        elif arg == "--chunked-first":
            pass
        elif arg in ("--depths", "--repeats", "--layers", "--json"):
            skip = True
        elif not arg.startswith(("--depths=", "--repeats=", "--layers=", "--json=")):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
