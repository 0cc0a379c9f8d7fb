"""Export a stage's Lightning checkpoint as a Hugging Face model directory (merged LoRA/QLoRA).

``python -m pebr_lit.policy.export --ckpt runs/demo/stage2/checkpoints/last.ckpt --out runs/demo/export``
rebuilds the policy the checkpoint describes (base path, LoRA and quantisation settings are stored in
it by ``slim_checkpoint``), loads the trained weights and writes model + processor with
``save_pretrained``, so plain ``transformers`` (or vLLM, sglang, VLMEvalKit) can load the result.

Left out on purpose: training anything; choosing weights (the checkpoint decides).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pebr_lit.ckpt.safe_load import CheckpointError
from pebr_lit.policy.checkpoint import init_policy_from, read_policy_state
from pebr_lit.policy.settings import LoraSettings, QuantizationSettings
from pebr_lit.policy.wrapper import PolicyWrapper


def export_checkpoint(
    ckpt: str | Path, out_dir: str | Path, model_name_or_path: str | None = None, dtype: str = "auto"
) -> Path:
    """Write the merged policy of ``ckpt`` to ``out_dir``; ``model_name_or_path`` overrides the stored base."""
    _, info = read_policy_state(ckpt, "--ckpt", check_values=False)  # before the base model is built
    source = model_name_or_path or info.get("source")
    if not source:
        raise ValueError(f"{ckpt}: the checkpoint does not name its base model; pass --model.")
    lora = LoraSettings(**info["lora"]) if info.get("lora") else None
    quantization = QuantizationSettings(**info["quantization"]) if info.get("quantization") else None
    policy = PolicyWrapper(
        source, dtype=dtype, lora=lora, quantization=quantization, freeze_vision=False, freeze_projector=False
    )
    init_policy_from(policy, ckpt, "--ckpt")
    return policy.save_pretrained(out_dir, merge_lora=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint of any pebr-lit stage")
    parser.add_argument("--out", required=True, help="directory for the Hugging Face model")
    parser.add_argument(
        "--model", default=None, help="base model path or hub id (default: the one stored in the checkpoint)"
    )
    parser.add_argument("--dtype", default="auto", help="weight dtype of the export: auto, float32, bfloat16, float16")
    args = parser.parse_args(argv)
    try:
        out = export_checkpoint(args.ckpt, args.out, args.model, args.dtype)
    except CheckpointError as err:
        parser.exit(2, f"error: {err}\n")
    print(f"exported {args.ckpt} -> {out} (load with transformers.AutoModelForImageTextToText.from_pretrained)")


if __name__ == "__main__":
    main()
