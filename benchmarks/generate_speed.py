"""Benchmark: ``PolicyWrapper.generate`` with Hugging Face's dynamic KV cache vs pebr-lit's preallocated one.

Loads the same policy twice (only ``kv_cache`` differs, both with ``attn_implementation``
``sdpa_folded_gqa`` as in the demo configs), then for each setting generates for the same batch of
left-padded prompts with images, alternating the two ``--repeats`` times so both see the same
background load. It prints mean and minimum seconds per ``generate`` call, the ratio of the minima,
and whether the two gave bitwise identical response tokens (they must: same seed, same values).

The default settings are the demo's: a GRPO rollout (4 prompts x 8 samples, temperature 1.0), an
evaluation (64 prompts x 4, temperature 0.5) and difficulty sampling (32 prompts x 8), each up to 192
new tokens; ``--quick`` runs the first only.

    python benchmarks/generate_speed.py --threads 1                 # tiny model built into a temp dir
    python benchmarks/generate_speed.py --model runs/demo/assets/vlm --init-from runs/demo/sft/checkpoints/last.ckpt \\
        --data runs/demo/data/test.jsonl --threads 1                # the demo's SFT policy (stops at end-of-turn)

Left out on purpose: GPUs and memory figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

CACHES = ("dynamic", "preallocated")
#: label -> (prompts, samples per prompt, temperature); the demo configs' rollout, eval and sampling calls.
SETTINGS = {
    "rollout 4x8": (4, 8, 1.0),
    "eval 64x4": (64, 4, 0.5),
    "sampling 32x8": (32, 8, 1.0),
}


def run(
    model: str,
    data: str,
    init_from: str | None,
    new_tokens: int,
    repeats: int,
    settings: dict[str, tuple[int, int, float]],
) -> None:
    from pebr_lit.data.collate import collate_prompts
    from pebr_lit.data.records import load_records
    from pebr_lit.format.prompts import InstructionPrompt
    from pebr_lit.policy.checkpoint import init_policy_from
    from pebr_lit.policy.settings import SamplingSettings
    from pebr_lit.policy.wrapper import PolicyWrapper

    policies = {
        c: PolicyWrapper(model, dtype="float32", attn_implementation="sdpa_folded_gqa", kv_cache=c) for c in CACHES
    }
    if init_from:
        for policy in policies.values():
            init_policy_from(policy, init_from)
    records = load_records(data, limit=max(p for p, _, _ in settings.values()))
    for label, (prompts, samples, temperature) in settings.items():
        batch = collate_prompts(records[:prompts], policies["dynamic"].processor, None, InstructionPrompt())["prompts"]
        sampling = SamplingSettings(num_samples=samples, temperature=temperature, max_new_tokens=new_tokens)
        times: dict[str, list[float]] = {c: [] for c in CACHES}
        ids: dict[str, torch.Tensor] = {}
        for _ in range(repeats):
            for cache in CACHES:
                torch.manual_seed(0)
                start = time.perf_counter()
                ids[cache] = policies[cache].generate(batch, sampling).response_ids  # [B*n, R]
                times[cache].append(time.perf_counter() - start)
        for cache in CACHES:
            t = times[cache]
            print(f"{label:>14} {cache:>12}: mean {sum(t) / len(t):6.2f} s, min {min(t):6.2f} s per generate")
        ratio = min(times["dynamic"]) / min(times["preallocated"])
        same = torch.equal(ids["dynamic"], ids["preallocated"])
        shape = "x".join(map(str, ids["dynamic"].shape))
        print(f"{label:>14} dynamic / preallocated (min): {ratio:.2f}x; responses {shape}; identical tokens: {same}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="policy directory (default: build the tiny model into a temp dir)"
    )
    parser.add_argument(
        "--init-from", default=None, help="stage checkpoint to load into the policy (e.g. the demo's SFT)"
    )
    parser.add_argument("--data", default=None, help="record file for the prompts (default: a small synthetic world)")
    parser.add_argument("--new-tokens", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the rollout setting (4 prompts x 8 samples)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = dict(list(SETTINGS.items())[:1]) if args.quick else SETTINGS
    with tempfile.TemporaryDirectory() as tmp:
        model, data = args.model, args.data
        if model is None:
            from pebr_lit.demo.tiny import build_assets

            model = str(build_assets(Path(tmp) / "assets", seed=args.seed)["vlm"])
        if data is None:
            from pebr_lit.demo.synthetic import generate

            data = str(generate(Path(tmp) / "world", 64, seed=args.seed, split="test"))
        print(
            f"model {model}, <= {args.new_tokens} new tokens, x{args.repeats} alternating, "
            f"torch threads {torch.get_num_threads()}"
        )
        run(model, data, args.init_from, args.new_tokens, args.repeats, settings)


if __name__ == "__main__":
    main()
