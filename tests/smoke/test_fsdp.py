"""Smoke: stage-2 GRPO (and SFT) under FSDP2 (``pebr_lit.policy.fsdp.FSDP2Strategy``) on 2 CPU processes.

Four ``python cli.py fit`` runs of 2 gloo processes each, with the ``DDPProbe`` callback
(tests/helpers/ddp_probe.py) writing what each rank saw:

- ``ddp``: DDP, full fine-tuning, KL to a full reference copy, 2 rollout batches x 2 optimizer steps;
- ``fsdp``: the same under FSDP2 (reference copy sharded too), step checkpoints every 2 steps;
- ``resume``: FSDP2 again from the ``fsdp`` run's step-2 checkpoint (``--ckpt_path``);
- ``lora``: FSDP2 with LoRA (reference = the disabled adapter), ``init_from`` the ``fsdp`` run;

a ``mixed`` run: FSDP2 with ``sharding.param_dtype: bfloat16``, ``reduce_dtype: float32`` at lr 1e-6 (the
authors' precision), and two SFT runs (DDP, FSDP2; Lightning's automatic optimization and gradient clipping).

The rollouts of DDP and FSDP2 runs are the same draws (same seeds, bitwise-equal gathered weights), so
their updates must agree to float rounding. Gradient clipping is set far below the gradients' norm,
so every optimizer step is clipped: the norm the optimizer sees must equal the clip value.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pebr_lit.policy.checkpoint import POLICY_PREFIX
from tests.helpers.ddp_probe import named_digest

ROOT = Path(__file__).resolve().parents[2]
GROUP, GLOBAL_BATCH, ROLLOUT_STEPS, MINI_BATCHES, CLIP = 4, 4, 2, 2, 0.01
FSDP = {"class_path": "pebr_lit.policy.fsdp.FSDP2Strategy"}
DDP = {"class_path": "lightning.pytorch.strategies.DDPStrategy", "init_args": {"process_group_backend": "gloo"}}

pytestmark = pytest.mark.slow


def fit_command(
    assets,
    world,
    out: Path,
    strategy: dict,
    config: str = "configs/demo/stage2.yaml",
    extra: tuple = (),
    accelerator: str = "cpu",
) -> list[str]:
    """``cli.py fit`` on 2 processes with step checkpoints every 2 optimizer steps (GRPO: and the probe)."""
    probe = {"class_path": "tests.helpers.ddp_probe.DDPProbe", "init_args": {"out_dir": str(out / "probe")}}
    checkpoints = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"save_last": True, "save_top_k": -1, "every_n_train_steps": 2},
    }
    grpo = "sft" not in config  # SFT runs: no reference, no probe (it records GRPO steps)
    callbacks = [checkpoints]
    if grpo:
        callbacks += [
            {"class_path": "callbacks.reference.ReferencePolicy"},
            {"class_path": "callbacks.kl_control.KLController", "init_args": {"coef": 0.01}},
            probe,
        ]
    cmd = [
        sys.executable,
        "cli.py",
        "fit",
        "--config",
        config,
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        f"--data.init_args.val_files=[{world / 'val.jsonl'}]",
        "--data.init_args.val_limit=4",
        f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.default_root_dir={out}",
        "--trainer.enable_progress_bar=false",
        f"--trainer.max_steps={ROLLOUT_STEPS * MINI_BATCHES}",
        f"--trainer.val_check_interval={ROLLOUT_STEPS}",
        f"--trainer.accelerator={accelerator}",
        "--trainer.devices=2",
        f"--trainer.strategy={json.dumps(strategy)}",
        f"--trainer.callbacks={json.dumps(callbacks)}",
    ]
    if not grpo:
        cmd += [
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            "--data.init_args.batch_size=4",
            f"--trainer.gradient_clip_val={CLIP}",
            "--trainer.limit_val_batches=1",
            "--model.init_args.eval_sampling.max_new_tokens=8",
        ]
    if grpo:
        cmd += [
            f"--model.init_args.sampling.num_samples={GROUP}",
            "--model.init_args.sampling.max_new_tokens=8",
            "--model.init_args.eval_sampling.max_new_tokens=8",
            "--model.init_args.micro_batch_size=3",  # 8 rollouts per rank, 4 per optimizer step: 2 backwards
            f"--model.init_args.mini_batches={MINI_BATCHES}",
            f"--model.init_args.gradient_clip_val={CLIP}",
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            f"--data.init_args.batch_size={GLOBAL_BATCH}",
            "--data.init_args.eval_batch_size=2",
        ]
    return cmd + list(extra)


def run(cmd: list[str], out: Path) -> list[dict]:
    """Run ``cmd``; returns the two ranks' probe reports (none without the probe)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"run failed (rc {done.returncode}):\n{done.stderr[-4000:]}"
    probes = out / "probe"
    return [json.loads((probes / f"rank{r}.json").read_text()) for r in (0, 1)] if probes.is_dir() else []


def checkpoint(out: Path, name: str = "last.ckpt", stage: str = "stage2") -> dict:
    path = out / stage / "checkpoints" / name
    assert path.is_file(), f"{path} is not one file (a distributed-checkpoint folder?)"
    return torch.load(path, map_location="cpu", weights_only=True)


def state_digest(state: dict[str, torch.Tensor], prefix: str = "policy.") -> str:
    """The probe's ``named_digest`` of a checkpoint's weights, names taken relative to ``prefix``."""
    return named_digest({k[len(prefix) :]: v for k, v in state.items()})


@pytest.fixture(scope="module")
def runs(assets, world, tmp_path_factory):
    base = tmp_path_factory.mktemp("fsdp")
    out = {name: base / name for name in ("ddp", "fsdp", "resume", "lora")}
    reports = {"ddp": run(fit_command(assets, world, out["ddp"], DDP), out["ddp"])}
    reports["fsdp"] = run(fit_command(assets, world, out["fsdp"], FSDP), out["fsdp"])
    half = out["fsdp"] / "stage2" / "checkpoints" / f"epoch=0-step={MINI_BATCHES}.ckpt"
    reports["resume"] = run(
        fit_command(assets, world, out["resume"], FSDP, extra=(f"--ckpt_path={half}",)), out["resume"]
    )
    lora = (
        "--model.init_args.policy.init_args.lora={r: 4, alpha: 8, dropout: 0.0}",
        f"--model.init_args.init_from={out['fsdp'] / 'stage2' / 'checkpoints' / 'last.ckpt'}",
    )
    reports["lora"] = run(fit_command(assets, world, out["lora"], FSDP, extra=lora), out["lora"])
    return out, reports


def test_fsdp_updates_match_ddp(runs):
    out, reports = runs
    ddp, fsdp = reports["ddp"], reports["fsdp"]
    assert ddp[0]["initial_digest"] == fsdp[0]["initial_digest"]
    assert (
        fsdp[0]["reference_digest"] == ddp[0]["reference_digest"] is not None
    )  # the sharded copy holds the same weights
    for k in range(ROLLOUT_STEPS):
        for rank in (0, 1):
            a, b = ddp[rank]["steps"][k], fsdp[rank]["steps"][k]
            assert a["qids"] == b["qids"] and a["global_step"] == b["global_step"], (rank, k)
            # Clipped on both: the optimizer saw gradients of norm CLIP (clip_grad_norm_ over DTensor shards).
            assert b["grad_norms"] == pytest.approx([CLIP] * MINI_BATCHES, rel=1e-4), (rank, k)
            assert b["grad_norms"] == pytest.approx(a["grad_norms"], rel=1e-5), (rank, k)
        assert fsdp[0]["steps"][k]["digest"] == fsdp[1]["steps"][k]["digest"]  # whole tensors agree across ranks
    # Same rollouts, hence the same rewards and loss diagnostics, on every rank.
    # train/grad_norm: the norm before clipping, global on every rank (FSDP2: over DTensor shards).
    for name in ("train/reward/probe", "train/policy_loss", "train/kl", "train/grad_norm"):
        for rank in (0, 1):
            values = [[e["value"] for e in r[rank]["logged"] if e["name"] == name] for r in (ddp, fsdp)]
            assert len(values[0]) == ROLLOUT_STEPS and values[1] == pytest.approx(values[0], rel=1e-4, abs=1e-7), (
                name,
                rank,
            )
    start = torch.load(
        out["fsdp"] / "stage2" / "checkpoints" / f"epoch=0-step={MINI_BATCHES}.ckpt",
        map_location="cpu",
        weights_only=True,
    )
    a, b = checkpoint(out["ddp"])["state_dict"], checkpoint(out["fsdp"])["state_dict"]
    moved = max(float((b[k] - start["state_dict"][k]).abs().max()) for k in b)
    gap = max(float((b[k] - a[k]).abs().max()) for k in b)
    # The last 2 Adam steps (lr 3e-5) moved some weight by ~2 lr; FSDP2 and DDP may differ by rounding only.
    assert moved > 3e-5 and gap < moved / 1000, (moved, gap)


def test_slim_checkpoint_is_the_ddp_layout(runs):
    out, _ = runs
    a, b = checkpoint(out["ddp"]), checkpoint(out["fsdp"])
    assert set(b["state_dict"]) == set(a["state_dict"]) and all(k.startswith(POLICY_PREFIX) for k in b["state_dict"])
    for name, value in b["state_dict"].items():
        assert type(value) is torch.Tensor and value.shape == a["state_dict"][name].shape, (
            name
        )  # whole tensors, not shards
    assert b["pebr_policy"] == a["pebr_policy"] and b["rollout_batches"] == a["rollout_batches"] == ROLLOUT_STEPS
    adam_a, adam_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert set(adam_b) == set(adam_a) and all(adam_b[i]["exp_avg"].shape == adam_a[i]["exp_avg"].shape for i in adam_a)


def test_resume_continues_from_the_step_checkpoint(runs):
    out, reports = runs
    fsdp, resumed = reports["fsdp"], reports["resume"]
    half = checkpoint(out["fsdp"], f"epoch=0-step={MINI_BATCHES}.ckpt")
    assert resumed[0]["initial_digest"] == state_digest(half["state_dict"]) == fsdp[0]["steps"][0]["digest"]
    assert len(resumed[0]["steps"]) == ROLLOUT_STEPS - 1  # only the second rollout batch was left
    for rank in (0, 1):
        step = resumed[rank]["steps"][0]
        assert step["qids"] == fsdp[rank]["steps"][1]["qids"] and step["global_step"] == ROLLOUT_STEPS * MINI_BATCHES
    final = checkpoint(out["resume"])
    assert final["rollout_batches"] == ROLLOUT_STEPS
    assert (
        float(final["optimizer_states"][0]["state"][0]["step"]) == ROLLOUT_STEPS * MINI_BATCHES
    )  # Adam state restored


def test_lora_under_fsdp_starts_from_init_from_and_saves_adapters(runs):
    out, reports = runs
    source = checkpoint(out["fsdp"])["state_dict"]
    lora = reports["lora"]
    # full -> LoRA: the trained weights become the adapter's base (frozen, sharded, gathered for the digest).
    assert lora[0]["frozen_digest"] == lora[1]["frozen_digest"] == state_digest(source, POLICY_PREFIX)
    assert lora[0]["reference_digest"] is None  # the disabled adapter is the reference: nothing copied
    saved = checkpoint(out["lora"])["state_dict"]
    assert saved and all("lora_" in k for k in saved) and all(type(v) is torch.Tensor for v in saved.values())
    assert (
        max(float(v.abs().max()) for k, v in saved.items() if "lora_B" in k) > 0
    )  # B starts at zero: the adapter trained


@pytest.fixture(scope="module")
def mixed_run(assets, world, tmp_path_factory):
    """FSDP2 with the authors' precision: fp32 shards and Adam state, bf16 gathers and compute, fp32 reduce."""
    out = tmp_path_factory.mktemp("fsdp_mixed")
    sharding = {"param_dtype": "bfloat16", "reduce_dtype": "float32"}
    extra = ("--model.init_args.optimizer.init_args.lr=1e-6", "--model.init_args.gradient_clip_val=1.0")
    strategy = FSDP | {"init_args": {"sharding": sharding}}
    return out, run(fit_command(assets, world, out, strategy, extra=extra), out)


def test_bf16_compute_over_fp32_shards_trains_at_lr_1e_6(mixed_run, assets):
    from pebr_lit.policy.wrapper import PolicyWrapper

    out, reports = mixed_run
    saved = checkpoint(out)["state_dict"]
    start = {"policy." + k: v for k, v in PolicyWrapper(str(assets["vlm"]), dtype="float32").state_dict().items()}
    assert all(v.dtype == torch.float32 for v in saved.values())  # the shards, gathered: fp32 master weights
    changed = sum(int((v != start[k]).sum()) for k, v in saved.items())
    # 4 AdamW steps of ~1e-6 move every weight that got a gradient (in bf16 storage almost none would).
    assert changed / sum(v.numel() for v in saved.values()) > 0.9
    for k in range(ROLLOUT_STEPS):
        assert reports[0]["steps"][k]["digest"] == reports[1]["steps"][k]["digest"]
    norms = [e["value"] for e in reports[0]["logged"] if e["name"] == "train/grad_norm"]
    assert len(norms) == ROLLOUT_STEPS and all(math.isfinite(v) and v > 0 for v in norms)


@pytest.fixture(scope="module")
def sft_runs(assets, world, tmp_path_factory):
    base = tmp_path_factory.mktemp("fsdp_sft")
    for name, strategy in (("ddp", DDP), ("fsdp", FSDP)):
        run(fit_command(assets, world, base / name, strategy, config="configs/demo/sft.yaml"), base / name)
    return base


def test_sft_under_fsdp_matches_ddp(sft_runs, assets):
    from pebr_lit.policy.wrapper import PolicyWrapper

    a, b = (checkpoint(sft_runs / name, stage="sft")["state_dict"] for name in ("ddp", "fsdp"))
    start = {"policy." + k: v for k, v in PolicyWrapper(str(assets["vlm"]), dtype="float32").state_dict().items()}
    assert set(b) == set(a) and all(type(v) is torch.Tensor for v in b.values())
    moved = max(float((b[k] - start[k]).abs().max()) for k in b)
    gap = max(float((b[k] - a[k]).abs().max()) for k in b)
    assert moved > 1e-4 and gap < moved / 1000, (moved, gap)  # 4 warm-up steps of lr <= 1.6e-4
