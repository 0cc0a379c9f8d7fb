"""The prepared GPU check on CPU: ``gpu_check.sh --dry-run`` end to end, and the pieces a dry run cannot show.

The one GPU call must not be spent on a typo, so the script runs here with the shrunk model (status.json and
gpu_grpo.json checked field by field); the 7B config's size and the end-token hold-back are checked apart,
since the dry run's shrunk model neither has 8 B parameters nor ever samples an end token by chance.

Left out on purpose: anything that needs CUDA (bitsandbytes' 4-bit training, memory peaks): that is the GPU call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts' own folder, as when they run

from gpu_grpo_parts import FixedLengthGenerate, build_random_vlm, qwen2_5_vl_7b_config  # noqa: E402

from pebr_lit.policy.settings import SamplingSettings  # noqa: E402
from pebr_lit.policy.wrapper import PolicyWrapper  # noqa: E402


def test_7b_config_has_the_released_parameter_count():
    from transformers import Qwen2_5_VLForConditionalGeneration

    from pebr_lit.demo.tiny import build_tokenizer

    config = qwen2_5_vl_7b_config(build_tokenizer(["a b c"] * 5, vocab_size=300))
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    # Language model, per layer: q 3584^2 + 3584, k and v 3584*512 + 512 each, o 3584^2, MLP 3*3584*18944, 2 norms
    # of 3584 -> 233,057,792; x 28 layers + embedding and LM head 2*152064*3584 + final norm 3584 = 7,615,616,512.
    # Vision: patch conv 3*2*14*14*1280; per block 2 norms 2*1280, qkv 1280*3840 + 3840, proj 1280^2 + 1280, MLP
    # 2*(1280*3420 + 3420) + 3420*1280 + 1280 -> 20,029,056 x 32; merger norm 1280, 5120^2 + 5120, 5120*3584 + 3584:
    # 676,550,144. Total 8,292,166,656 (the released checkpoint's 8.29 B).
    assert sum(p.numel() for p in model.parameters()) == 8_292_166_656
    assert sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}") == 676_550_144


def test_fixed_length_generate_holds_back_end_tokens(tmp_path):
    model_dir, _ = build_random_vlm(tmp_path / "vlm", device="cpu", dtype=torch.float32, shrink=True)
    policy = PolicyWrapper(str(model_dir), dtype="float32")
    eos = torch.tensor(policy.eos_token_ids)

    def favour_eos(module, inputs, logits):  # every step's most likely token is an end token
        logits = logits.clone()
        logits[..., eos] += 1e4
        return logits

    policy.model.lm_head.register_forward_hook(favour_eos)
    prompts = dict(policy.tokenizer(["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt"))
    sampling = SamplingSettings(num_samples=1, do_sample=False, max_new_tokens=6)
    plain = policy.generate(prompts, sampling)
    assert int(plain.response_mask.sum()) <= 1 and not plain.truncated.any()  # ends at once
    engine = FixedLengthGenerate()
    forced = engine.generate(policy, prompts, [None], sampling)
    assert engine.last_lengths == [6] and bool(forced.truncated.all())  # 6 tokens, none of them an end token
    assert not torch.isin(forced.response_ids, eos).any()
    assert policy.model.generation_config.min_new_tokens is None  # restored for every other generate


@pytest.mark.slow
def test_gpu_check_dry_run_writes_status_and_report(tmp_path):
    out = tmp_path / "out"
    env = dict(
        os.environ,
        OUT=str(out),
        PYTHON=sys.executable,
        WHEELS=str(tmp_path / "no_wheels"),  # absent: the dry run skips pip instead of resolving against this venv
        GPU_GRPO_ARGS="--steps 1 --warmup 1 --max-new-tokens 8",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    status = json.loads((out / "status.json").read_text())
    assert status["dry_run"] is True
    phases = status["phases"]
    assert list(phases) == ["env", "pip", "pytest", "gpu_grpo"]
    assert phases["pip"]["status"] == "skipped"
    assert {phases[p]["status"] for p in ("env", "pytest", "gpu_grpo")} == {"ok"}, phases
    for name in ("env", "pytest", "gpu_grpo", "gpu_check"):
        assert (out / f"{name}.log").stat().st_size > 0
    assert "tests collected" in (out / "pytest.log").read_text()

    report = json.loads((out / "gpu_grpo.json").read_text())
    assert report["mode"] == "dry-run" and report["status"] == "ok", report.get("error")
    shapes = report["shapes"]
    # 1 prompt x group 8, every response forced to 8 tokens; a 112 x 112 image is (112/14)^2 / 2^2 = 16 tokens
    assert (shapes["prompts"], shapes["group"], shapes["micro_batch_size"]) == (1, 8, 4)
    assert shapes["response_tokens_mean"] == 8 and shapes["responses_full_length"] is True
    assert shapes["image_tokens_per_prompt"] == 16
    assert len(report["steps"]) == 2  # warm-up + 1 timed
    assert all(step["response_lengths"] == [8] * 8 for step in report["steps"])
    mean = report["step_time_s"]["mean"]
    for phase in ("rollout", "ref_logprobs", "forward", "backward", "optimizer", "total"):
        assert mean[phase] > 0, phase
    assert mean["old_logprobs"] == 0  # one mini-batch: no old-policy pass
    assert report["rollout_tokens_per_s"] == pytest.approx(8 * 8 / mean["rollout"])
    train_s = sum(mean[p] for p in ("ref_logprobs", "old_logprobs", "forward", "loss", "backward", "optimizer"))
    assert report["training_tokens_per_s"] == pytest.approx(8 * (shapes["prompt_tokens"] + 8) / train_s)
    assert set(report["memory_groups"]) == {"rollout", "logprobs", "update", "all"}
    assert report["memory_groups"]["all"]["allocated_gb"] is None  # no CUDA: RSS only
    assert report["cpu_peak_rss_gb"] > 0
    assert report["adapters_changed"] is True
    assert report["model"]["lora"]["r"] == 64 and report["model"]["quantization"] is None
    assert "available" in report["planner"]
