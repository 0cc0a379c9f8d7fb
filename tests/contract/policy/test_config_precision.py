"""Contract: every shipped real-scale config's precision trains at lr 1e-6 (the authors' RL rate).

For each launchable YAML under ``configs/qwen2_5_vl_*/``, as ``cli.py --print_config`` composes it,
the tiny model is set up the way that config sets up the real one: ``policy.dtype`` (``auto`` read as
bfloat16, the dtype Qwen2.5-VL checkpoints are saved in), its freezing, LoRA and 4-bit quantisation,
FSDP2 sharding with its ``param_dtype``/``reduce_dtype`` (one gloo process: real DTensor shards and
mixed-precision gathers), then Lightning's own precision plugin for ``trainer.precision`` (module
conversion, then its forward context around each step, as ``Trainer.fit`` does). Three AdamW steps
at lr 1e-6 must pass the fit-start check (``pebr_lit.policy.precision``) and change more than 90 % of
the trainable elements. The old setting (``bf16-true`` with bfloat16 weights) is measured the same
way and must change fewer than 10 %: the measurement can tell the two apart. The three precisions
the real-scale configs use (docs/policy.md, Precision) are also tested as settings of their own.

QLoRA configs load the base in 4-bit when bitsandbytes is installed (training, after ``generate`` too,
runs on the CPU: ``test_qlora_cpu.py``, ``tests/smoke/test_qlora_grpo_cpu.py``) and otherwise train
the adapters over a bfloat16 base, the compute dtype.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import lightning as L
import pytest
import torch
import torch.distributed as dist

from cli import printed_config, run_subcommand
from pebr_lit.data.collate import encode_sft
from pebr_lit.data.records import load_records
from pebr_lit.policy.fsdp import Sharding, full_tensor, shard_model
from pebr_lit.policy.precision import check_update_precision
from pebr_lit.policy.settings import LoraSettings, QuantizationSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from tests.helpers.configs import ROOT, init_args, real_scale_configs

LR, STEPS = 1e-6, 3
CONFIGS = [p for p in real_scale_configs() if run_subcommand(p) == "fit"]  # the ones that train
SHARDED = ("FSDP2Strategy", "ModelParallelStrategy")


@pytest.fixture(scope="module")
def mesh():
    from torch.distributed.device_mesh import init_device_mesh

    if dist.is_initialized():
        pytest.skip("a process group already exists in this test process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield init_device_mesh("cpu", (1,))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def records(world):
    return load_records(world / "train.jsonl")[:2]


def precision_of(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a printed config says about precision: trainer precision, policy dtype/LoRA/4-bit, FSDP2 dtypes."""
    policy = init_args(cfg["model"]["init_args"]["policy"])
    strategy = cfg["trainer"].get("strategy")
    sharded = isinstance(strategy, dict) and strategy.get("class_path", "").endswith(SHARDED)
    return {
        "precision": str(cfg["trainer"]["precision"]),
        "dtype": policy.get("dtype", "auto"),
        "lora": policy.get("lora"),
        "quantization": policy.get("quantization"),
        "freeze_vision": policy.get("freeze_vision", True),
        "freeze_projector": policy.get("freeze_projector", True),
        "gradient_checkpointing": policy.get("gradient_checkpointing", False),
        "sharding": (init_args(strategy).get("sharding") or {}) if sharded else None,
    }


def train_tiny(assets, records, setting: dict[str, Any], mesh, allow: bool = False) -> tuple[float, set, bool]:
    """Share of trainable elements that STEPS AdamW steps at LR changed, the trainable dtypes, whether 4-bit."""
    quant = setting["quantization"]
    if quant and importlib.util.find_spec("bitsandbytes") is None:
        quant = None  # no 4-bit here: the adapters train over the compute dtype instead
        setting = {**setting, "dtype": setting["quantization"].get("compute_dtype", "bfloat16")}
    torch.manual_seed(0)
    policy = PolicyWrapper(
        str(assets["vlm"]),
        dtype="bfloat16" if setting["dtype"] == "auto" else setting["dtype"],
        freeze_vision=setting["freeze_vision"],
        freeze_projector=setting["freeze_projector"],
        gradient_checkpointing=setting["gradient_checkpointing"],
        lora=LoraSettings(**setting["lora"]) if setting["lora"] else None,
        quantization=QuantizationSettings(**quant) if quant else None,
    )
    batch = encode_sft(
        policy.processor,
        [r.problem for r in records],
        [r.load_images() for r in records],
        [r.response for r in records],
        max_length=160,
    )
    batch.pop("num_truncated")
    if setting["sharding"] is not None:  # configure_model comes before the precision plugin's conversion
        offload_free = {**setting["sharding"], "cpu_offload": False}  # dtypes only; the CPU is the device anyway
        shard_model(policy.model, mesh, Sharding(**offload_free))
    trainer = L.Trainer(
        precision=setting["precision"], accelerator="cpu", devices=1, logger=False, enable_checkpointing=False
    )
    plugin = trainer.precision_plugin
    module = plugin.convert_module(policy)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    check_update_precision([optimizer], allow=allow)
    before = [full_tensor(p.detach()).clone() for p in params]
    for _ in range(STEPS):
        optimizer.zero_grad()
        with plugin.forward_context():
            loss = module(**batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
    changed = sum(int((full_tensor(p.detach()) != b).sum()) for p, b in zip(params, before))
    four_bit = any(type(p).__name__ == "Params4bit" for p in module.parameters())
    return changed / sum(b.numel() for b in before), {p.dtype for p in params}, four_bit


def test_there_are_real_scale_configs():
    assert CONFIGS, "no launchable YAML under configs/qwen2_5_vl_*/"


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT / "configs")) for p in CONFIGS])
def test_shipped_precision_trains_at_lr_1e_6(path, assets, records, mesh):
    setting = precision_of(printed_config(path))
    share, dtypes, _ = train_tiny(assets, records, setting, mesh)
    if setting["lora"]:
        assert dtypes == {torch.float32}, (setting, dtypes)  # adapters in fp32 whatever the base
    assert share > 0.9, (path.name, setting, share)


FULL = {
    "lora": None,
    "quantization": None,
    "freeze_vision": False,
    "freeze_projector": False,
    "gradient_checkpointing": False,
    "sharding": None,
}
LORA = {"r": 8, "alpha": 16, "dropout": 0.05}
NF4 = {"quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}
#: The three precisions the real-scale configs use (docs/policy.md, Precision), tested even before a config uses them.
SETTINGS = {
    "fsdp2_full": FULL
    | {"precision": "32-true", "dtype": "float32", "sharding": {"param_dtype": "bfloat16", "reduce_dtype": "float32"}},
    "lora_80gb": FULL | {"precision": "bf16-mixed", "dtype": "bfloat16", "lora": LORA, "gradient_checkpointing": True},
    "qlora_24gb": FULL
    | {
        "precision": "bf16-mixed",
        "dtype": "bfloat16",
        "lora": LORA,
        "quantization": NF4,
        "gradient_checkpointing": True,
    },
}


@pytest.mark.parametrize("name", SETTINGS)
def test_the_decided_settings_train_at_lr_1e_6(name, assets, records, mesh):
    share, dtypes, four_bit = train_tiny(assets, records, SETTINGS[name], mesh)
    assert dtypes == {torch.float32} and share > 0.9, (name, dtypes, share)
    assert four_bit == (name == "qlora_24gb" and importlib.util.find_spec("bitsandbytes") is not None)


def test_old_bf16_true_setting_does_not_train(assets, records, mesh):
    old = FULL | {"precision": "bf16-true", "dtype": "bfloat16", "sharding": {}}
    with pytest.raises(ValueError, match=r"AdamW\.lr=1e-06: .*bfloat16"):
        train_tiny(assets, records, old, mesh)
    with pytest.warns(UserWarning, match="allow_low_precision_updates"):
        share, dtypes, _ = train_tiny(assets, records, old, mesh, allow=True)
    # Only weights below lr * 2 / eps = 2.6e-4 (and zero-initialised biases) can move: ~2 % of the tiny model.
    assert dtypes == {torch.bfloat16} and share < 0.1, share
