"""Smoke: a QLoRA stage-2 fit (ReasoningGRPO, real rollouts, 4-bit nf4 base) trains on the CPU through the CLI.

This is the small labs' main path: a rollout with ``generate``, then the GRPO backward through the
4-bit base. Under bitsandbytes 0.50.2 on a CPU with AVX512-BF16, the first rollout used to repack the
4-bit weights for inference, and the next training forward then raised "a view of a leaf Variable that
requires grad is being used in an in-place operation" (``pebr_lit.policy.quantization`` explains why).
The test checks that every adapter moves, the 4-bit base and its quantisation constants stay bit for bit,
and no layer is left in bitsandbytes' inference-only layout. Every ``lora_A`` moving shows that gradients
pass back through the 4-bit layers above it, which the inference-only kernel would have stopped without
any error.

Left out on purpose: ``bf16-mixed`` and gradient checkpointing with QLoRA (``tests/gpu/test_qlora_gpu.py``),
learning anything (``tests/smoke/test_grpo_learning.py``), and speed.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from cli import main
from pebr_lit.rewards.stages import StageReward

bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install 'pebr-lit[qlora]')")

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"
STEPS = 3  # the adapter B starts at 0, so lora_A first gets a gradient on step 2


class LowercaseReward(StageReward):
    """Toy reward with variance on an untrained model: the share of ASCII a-z among a response's characters.

    Stage 2's own reward (accuracy, format) pays the random tiny model nothing, so every advantage would be 0
    and no adapter would get a gradient; this keeps the loop ReasoningGRPO's and gives the groups a spread.
    """

    def __init__(self) -> None:
        super().__init__(lowercase=1.0)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        return {"lowercase": [sum(c in string.ascii_lowercase for c in r) / max(len(r), 1) for r in responses]}


def _four_bit(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}


def _base_snapshot(model: torch.nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each 4-bit layer's packed weight and its absmax (the double-quantised constants), cloned."""
    return {
        n: (m.weight.detach().clone(), m.weight.quant_state.absmax.detach().clone())
        for n, m in _four_bit(model).items()
    }


def test_qlora_stage2_fit_moves_adapters_and_keeps_the_4bit_base(assets, world, tmp_path):
    args = [
        "--config",
        str(CONFIGS / "stage2.yaml"),
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.policy.init_args.dtype=float32",
        "--model.init_args.policy.init_args.freeze_vision=true",
        "--model.init_args.policy.init_args.freeze_projector=true",
        "--model.init_args.policy.init_args.lora.r=4",
        "--model.init_args.policy.init_args.lora.alpha=8",
        "--model.init_args.policy.init_args.lora.dropout=0.0",
        "--model.init_args.policy.init_args.quantization.quant_type=nf4",
        "--model.init_args.policy.init_args.quantization.compute_dtype=float32",
        "--model.init_args.optimizer.init_args.lr=1e-2",  # large enough to move every adapter in 3 steps
        "--model.init_args.optimizer.init_args.weight_decay=0.0",  # else lora_A moves without any gradient
        "--model.init_args.sampling.num_samples=4",
        "--model.init_args.sampling.max_new_tokens=12",
        "--model.init_args.micro_batch_size=4",
        f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        "--data.init_args.batch_size=2",
        f"--trainer.max_steps={STEPS}",
        "--trainer.limit_val_batches=0",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]
    cli = main(args, run=False)
    assert type(cli.model).__name__ == "ReasoningGRPO"
    cli.model.reward = LowercaseReward()
    model = cli.model.policy.model
    four_bit = _four_bit(model)
    # 7 LoRA targets x 2 decoder layers; the frozen vision tower's linears are 4-bit too.
    assert sum(n.endswith(".base_layer") and "language_model" in n for n in four_bit) == 14
    base_before = _base_snapshot(model)
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert len(lora_before) == 28 and all("lora_" in n for n in lora_before)

    cli.trainer.fit(cli.model, cli.datamodule)

    assert cli.model.rollout_batches == STEPS and cli.trainer.global_step == STEPS
    assert cli.trainer.logged_metrics["train/zero_variance_groups"] < 1  # some groups had a spread to learn from
    after = dict(model.named_parameters())
    unmoved = [n for n, before in lora_before.items() if torch.equal(after[n].detach(), before)]
    assert unmoved == [], f"adapters that did not train: {unmoved}"
    for name, (weight, absmax) in base_before.items():
        layer = four_bit[name]
        assert layer.weight.dtype == torch.uint8 and torch.equal(layer.weight.detach(), weight), name
        assert torch.equal(layer.weight.quant_state.absmax, absmax), name
        assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False), name
