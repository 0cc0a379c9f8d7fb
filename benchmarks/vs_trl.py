"""Benchmark: a pebr-lit GRPO step against TRL's ``GRPOTrainer`` on the same model, data and settings.

Both train the tiny demo model (random weights, built by ``pebr_lit.demo.tiny``; or ``--model``, any
Hugging Face checkpoint directory) on demo-world records with images (or ``--data``): B prompts x G
responses per step, <= L new tokens, T 1, top-p 1, KL beta 0.01 against the starting weights, one optimizer
update per rollout batch, AdamW lr 1e-5, gradient norm clipped at 1, the same seed and the same accuracy +
format reward (``vs_trl_runs``). Each (shape, tool) run is its own process, the two tools alternating
``--repeats`` times so both see the same background load. Per shape it prints each tool's median step time
over the timed steps of all its runs, tokens generated per step, the mean reward over the same steps, peak
RSS, and the ratio pebr/TRL of the medians; ``--json`` writes every figure.

    pip install -e '.[bench]'       # TRL 1.16 (benchmark-only extra)
    python benchmarks/vs_trl.py --shapes 4x8x128,4x8x32,2x16x128,8x4x64 --repeats 3 --json vs_trl.json

A shape is BxGxL (prompts x group x max new tokens). Left out on purpose: GPUs, LoRA, vLLM generation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = ("pebr", "trl")
PLAIN = "pebr_plain"  # pebr-lit with its pre-#17 decoding defaults (sdpa, dynamic cache), with --pebr-plain


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        b, g, length = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r}: write PROMPTSxGROUPxTOKENS, e.g. 4x8x128") from None
    if b < 1 or g < 2 or length < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r}: need prompts >= 1, group >= 2, tokens >= 1")
    return b, g, length


def worker(args: argparse.Namespace) -> None:
    """One run in this process; its figures go to ``--out`` as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    from benchmarks.vs_trl_runs import RunSpec, run_pebr, run_trl

    b, g, length = args.shape
    spec = RunSpec(args.model, args.data, b, g, length, args.steps, args.warmup, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="vs_trl_") as tmp:
        result = run_trl(spec, tmp) if args.worker == "trl" else run_pebr(spec, plain=args.worker == PLAIN)
    Path(args.out).write_text(json.dumps(result))


def launch(tool: str, shape: str, args: argparse.Namespace, model: str, data: str, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--shapes", shape, "--out", str(out)]
    cmd += ["--model", model, "--data", data, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} run at {shape} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(out.read_text())
    if len(result["step_seconds"]) != args.steps:
        raise RuntimeError(f"{tool} at {shape}: timed {len(result['step_seconds'])} steps, expected {args.steps}")
    return result


def summary(runs: list[dict], warmup: int) -> dict:
    seconds = [s for r in runs for s in r["step_seconds"]]
    timed_rewards = [x for r in runs for x in r["reward_per_step"][warmup:]]
    return {
        "median_step_s": statistics.median(seconds),
        "run_medians_s": [statistics.median(r["step_seconds"]) for r in runs],
        "tokens_per_step": statistics.mean(t for r in runs for t in r["tokens_per_step"]),
        "mean_reward": statistics.mean(timed_rewards),
        "final_reward": statistics.mean(r["reward_per_step"][-1] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face checkpoint directory; default: the tiny demo model")
    parser.add_argument("--data", help="record file with images (JSONL); default: 64 demo-world records")
    parser.add_argument("--shapes", default="4x8x128", help="comma-separated PROMPTSxGROUPxTOKENS")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="runs per tool and shape, alternating the tools")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads in each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument(
        "--pebr-plain", action="store_true", help="also run pebr-lit with sdpa + dynamic KV cache (pre-#17 defaults)"
    )
    parser.add_argument("--worker", choices=(*TOOLS, PLAIN), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.threads < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --repeats >= 1, --threads >= 1")
    args.shape_list = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for s in args.shape_list:
        parse_shape(s)
    if args.worker:
        args.shape = parse_shape(args.shape_list[0])
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    with tempfile.TemporaryDirectory(prefix="vs_trl_") as tmp:
        model, data = args.model, args.data
        if model is None:
            from pebr_lit.demo.tiny import build_assets

            model = str(build_assets(Path(tmp) / "assets", seed=args.seed)["vlm"])
        if data is None:
            from pebr_lit.demo.synthetic import generate

            data = str(generate(Path(tmp) / "world", 64, seed=args.seed, split="train"))
        load = [os.getloadavg()]
        report: dict = {
            "conditions": {
                "model": args.model or "tiny demo model (random weights)",
                "steps": args.steps,
                "warmup": args.warmup,
                "repeats": args.repeats,
                "threads": args.threads,
                "cpus": os.cpu_count(),
                "seed": args.seed,
            },
            "shapes": {},
        }
        tools = (*TOOLS, PLAIN) if args.pebr_plain else TOOLS
        for shape in args.shape_list:
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            for i in range(args.repeats):
                order = tools if i % 2 == 0 else tools[::-1]
                for tool in order:
                    runs[tool].append(launch(tool, shape, args, model, data, Path(tmp) / f"{tool}.json"))
                    load.append(os.getloadavg())
            figures = {t: summary(runs[t], args.warmup) for t in tools}
            ratio = figures["pebr"]["median_step_s"] / figures["trl"]["median_step_s"]
            report["shapes"][shape] = {**figures, "ratio_pebr_over_trl": ratio, "runs": runs}
            if args.pebr_plain:
                plain_ratio = figures[PLAIN]["median_step_s"] / figures["trl"]["median_step_s"]
                report["shapes"][shape]["ratio_pebr_plain_over_trl"] = plain_ratio
            print(f"\n{shape} (prompts x group x max new tokens), {args.repeats} runs x {args.steps} steps each")
            print(f"  {'':<11}{'median s':>10}{'tokens/step':>13}{'reward':>9}{'final':>8}{'peak RSS MiB':>14}")
            for t in tools:
                f = figures[t]
                print(
                    f"  {t:<11}{f['median_step_s']:>10.3f}{f['tokens_per_step']:>13.0f}{f['mean_reward']:>9.3f}"
                    f"{f['final_reward']:>8.3f}{f['peak_rss_mib']:>14.0f}"
                )
            print(f"  ratio pebr/TRL {ratio:.2f}")
            if args.pebr_plain:
                print(f"  ratio pebr_plain/TRL {plain_ratio:.2f} (pre-#17 decoding defaults)")
        report["conditions"]["load_average_1min"] = [round(x[0], 2) for x in load]
        print(f"\nload average (1 min) before/after each run: {report['conditions']['load_average_1min']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
