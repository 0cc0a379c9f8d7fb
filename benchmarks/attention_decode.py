"""Benchmark: generation time with Hugging Face's ``sdpa`` vs pebr-lit's ``sdpa_folded_gqa`` attention.

Loads the same policy twice (only ``attn_implementation`` differs), generates for the same batch of
prompts with each, alternating ``--repeats`` times so both see the same background load, and prints
mean and minimum seconds per ``generate`` call and the ratio. It also says whether the two gave the
same texts (greedy: they should; the attention is the same maths without the KV-cache copy).

    python benchmarks/attention_decode.py --threads 1                       # tiny model built into a temp dir
    python benchmarks/attention_decode.py --model runs/demo/assets/vlm --data runs/demo/data/test.jsonl

Left out on purpose: GPUs (use ``flash_attention_2`` or ``sdpa`` there) and memory figures.
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

IMPLEMENTATIONS = ("sdpa", "sdpa_folded_gqa")


def run(model: str, data: str, prompts: int, samples: int, new_tokens: int, repeats: int) -> None:
    from pebr_lit.data.collate import collate_prompts
    from pebr_lit.data.records import load_records
    from pebr_lit.format.prompts import InstructionPrompt
    from pebr_lit.policy.settings import SamplingSettings
    from pebr_lit.policy.wrapper import PolicyWrapper

    records = load_records(data, limit=prompts)
    policies = {impl: PolicyWrapper(model, dtype="float32", attn_implementation=impl) for impl in IMPLEMENTATIONS}
    batch = collate_prompts(records, policies["sdpa"].processor, None, InstructionPrompt())["prompts"]
    settings = {
        "greedy": SamplingSettings(do_sample=False, max_new_tokens=new_tokens),
        f"sampled x{samples}": SamplingSettings(
            num_samples=samples, temperature=1.0, top_p=1.0, max_new_tokens=new_tokens
        ),
    }
    for label, sampling in settings.items():
        times: dict[str, list[float]] = {impl: [] for impl in IMPLEMENTATIONS}
        texts: dict[str, list[str]] = {}
        for _ in range(repeats):
            for impl in IMPLEMENTATIONS:
                torch.manual_seed(0)
                start = time.perf_counter()
                texts[impl] = policies[impl].generate(batch, sampling).texts
                times[impl].append(time.perf_counter() - start)
        for impl in IMPLEMENTATIONS:
            t = times[impl]
            print(f"{label:>12} {impl:>16}: mean {sum(t) / len(t):6.2f} s, min {min(t):6.2f} s per generate")
        ratio = min(times["sdpa"]) / min(times["sdpa_folded_gqa"])
        same = texts["sdpa"] == texts["sdpa_folded_gqa"]
        print(f"{label:>12} sdpa / sdpa_folded_gqa (min): {ratio:.2f}x; same texts: {same}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="policy directory (default: build the tiny model into a temp dir)"
    )
    parser.add_argument("--data", default=None, help="record file for the prompts (default: a small synthetic world)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4, help="responses per prompt in the sampled run")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model, data = args.model, args.data
        if model is None:
            from pebr_lit.demo.tiny import build_assets

            model = str(build_assets(Path(tmp) / "assets", seed=args.seed)["vlm"])
        if data is None:
            from pebr_lit.demo.synthetic import generate

            data = str(generate(Path(tmp) / "world", args.prompts, seed=args.seed, split="test"))
        print(
            f"model {model}, {args.prompts} prompts, {args.new_tokens} new tokens, "
            f"torch threads {torch.get_num_threads()}"
        )
        run(model, data, args.prompts, args.samples, args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
