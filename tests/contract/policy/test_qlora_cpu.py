"""QLoRA on the CPU (bitsandbytes 0.50.2): 4-bit load, sampling then backward, log-probs, reference, export.

bitsandbytes on a CPU with AVX512-BF16 would repack 4-bit weights (absmax rounded to bfloat16) for
inference at the first no-grad eval forward, after which no backward works; ``PolicyWrapper`` turns
that off (``pebr_lit.policy.quantization``), so the layout stays the trainable one throughout. A whole
QLoRA GRPO fit runs in ``tests/smoke/test_qlora_grpo_cpu.py``; ``bf16-mixed`` and gradient
checkpointing with QLoRA only in ``tests/gpu/test_qlora_gpu.py``."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, QuantizationSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper

bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install 'pebr-lit[qlora]')")

LORA = LoraSettings(r=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def qlora(assets) -> PolicyWrapper:
    torch.manual_seed(0)
    # revision is ignored for a local directory; it is here so the export can be checked to pass it on.
    return PolicyWrapper(
        str(assets["vlm"]),
        dtype="float32",
        lora=LORA,
        quantization=QuantizationSettings(compute_dtype="float32"),
        revision="main",
    )


@pytest.fixture(scope="module")
def prompts(qlora, world):
    records = load_records(world / "val.jsonl")[:2]
    return encode_prompts(qlora.processor, [r.problem for r in records], [r.load_images() for r in records])


def _set_lora_b(policy: PolicyWrapper, seed: int) -> None:
    """LoRA B starts at zero; give the adapter an effect (as training would)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def _scores(policy: PolicyWrapper, prompts, rollout, reference: bool = False) -> torch.Tensor:
    with torch.no_grad(), policy.reference() if reference else contextlib.nullcontext():
        logprobs, _ = policy.token_logprobs(
            prompts, rollout.response_ids, rollout.response_mask, num_samples=rollout.num_samples
        )
    return logprobs  # [B*n, R]


def test_language_model_linears_are_4bit_with_trainable_adapters(qlora):
    four_bit = [n for n, m in qlora.model.named_modules() if isinstance(m, bnb.nn.Linear4bit) and "language_model" in n]
    # 7 target linears x 2 decoder layers, each the base_layer under a LoRA wrapper
    assert len(four_bit) == 14 and all(n.endswith(".base_layer") for n in four_bit)
    layer = qlora.model.get_submodule(four_bit[0])
    assert layer.weight.dtype == torch.uint8 and layer.weight.quant_state is not None
    assert layer.weight.quant_state.quant_type == "nf4"
    trainable = [n for n, p in qlora.model.named_parameters() if p.requires_grad]
    assert len(trainable) == 28 and all("lora_" in n and "language_model" in n for n in trainable)
    assert qlora.describe()["quantization"] == {"quant_type": "nf4", "double_quant": True, "compute_dtype": "float32"}


def test_backward_after_generate_reaches_every_adapter(qlora, prompts):
    """GRPO's sequence: sample in eval mode without grad, then backward through the 4-bit base."""
    layers = [m for m in qlora.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)  # the guard, on any CPU
    torch.manual_seed(0)
    rollout = qlora.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))
    assert qlora.model.training and not any(
        getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers
    )
    logprobs, _ = qlora.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    mask = rollout.response_mask.float()  # [4, R]
    (-(logprobs * mask).sum() / mask.sum()).backward()
    grads = {n: p.grad for n, p in qlora.model.named_parameters() if p.requires_grad}
    qlora.model.zero_grad(set_to_none=True)
    # B starts at 0, so dL/dA = 0 on this first backward; dL/dB of layer 0 needs the gradient to pass back
    # through layer 1's 4-bit linears, which the inference-only layout would stop.
    assert len(grads) == 28 and all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


def test_generate_logprobs_and_reference(qlora, prompts):
    torch.manual_seed(0)
    rollout = qlora.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))
    assert rollout.response_ids.shape[0] == 4 and len(rollout.texts) == 4
    mask = rollout.response_mask.bool()  # [4, R]
    _set_lora_b(qlora, seed=0)
    adapted = _scores(qlora, prompts, rollout)
    reference = _scores(qlora, prompts, rollout, reference=True)
    for logprobs in (adapted, reference):
        assert torch.isfinite(logprobs).all()
        assert (logprobs[mask] < 0).all() and (logprobs[~mask] == 0).all()
    assert (adapted - reference)[mask].abs().max() > 0.1, "disabling the adapter must change the scores"
    with torch.no_grad():
        for name, p in qlora.model.named_parameters():
            if "lora_B" in name:
                p.zero_()
    torch.testing.assert_close(_scores(qlora, prompts, rollout), reference)  # B = 0: adapter is a no-op


def test_merged_export_is_unquantized_base_plus_adapter(qlora, prompts, assets, tmp_path):
    torch.manual_seed(1)
    rollout = qlora.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))
    mask = rollout.response_mask.bool()
    _set_lora_b(qlora, seed=1)
    q_adapted = _scores(qlora, prompts, rollout)

    # The same adapter on the unquantized base: what the export must equal.
    plain_lora = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LORA)
    with torch.no_grad():
        trained = dict(qlora.model.named_parameters())
        for name, p in plain_lora.model.named_parameters():
            if "lora_" in name:
                p.copy_(trained[name])
    fp_adapted = _scores(plain_lora, prompts, rollout)
    fp_base = _scores(plain_lora, prompts, rollout, reference=True)
    q_base = _scores(qlora, prompts, rollout, reference=True)

    loads = []
    original = AutoModelForImageTextToText.from_pretrained
    with pytest.MonkeyPatch.context() as mp:  # record how the export reloads the base
        mp.setattr(
            AutoModelForImageTextToText, "from_pretrained", lambda *a, **kw: loads.append((a, kw)) or original(*a, **kw)
        )
        out = qlora.save_pretrained(tmp_path / "merged", merge_lora=True)
    # The same base as the policy's (a hub id's revision included), unquantized, in the compute dtype.
    assert [(a[0], kw.get("revision"), kw.get("dtype"), "quantization_config" in kw) for a, kw in loads] == [
        (str(assets["vlm"]), "main", torch.float32, False)
    ]
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    plain = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    assert all(p.dtype == torch.float32 for p in plain.parameters()), "the export must not hold 4-bit weights"
    merged = _scores(PolicyWrapper(str(out), dtype="float32"), prompts, rollout)

    torch.testing.assert_close(merged, fp_adapted, atol=1e-4, rtol=1e-4)
    # Against the QLoRA policy itself, 4-bit rounding of the base is the only difference. Its size is
    # measured, not guessed: the adapter-free gap (4-bit base vs fp32 base, ~0.04 nats/token here).
    # The export may differ from the QLoRA policy by the same order, and by far less than the adapter's effect.
    export_gap = (merged - q_adapted)[mask].abs().mean()
    quant_noise = (q_base - fp_base)[mask].abs().mean()
    adapter_effect = (fp_adapted - fp_base)[mask].abs().mean()
    assert export_gap <= 2 * quant_noise, (export_gap, quant_noise)
    assert export_gap < adapter_effect / 4, (export_gap, adapter_effect)

    # The QLoRA policy keeps its adapter after the export and still scores.
    assert qlora.has_adapter and any("lora_" in n for n, _ in qlora.model.named_parameters())
    assert torch.isfinite(_scores(qlora, prompts, rollout)).all()
