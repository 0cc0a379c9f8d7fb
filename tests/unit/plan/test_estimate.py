"""The planner's arithmetic on a small made-up shape, every part derived by hand in the comments."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from pebr_lit.plan.estimate import CUDA_CONTEXT, lora_input_bytes, nf4_bytes, plan_run
from pebr_lit.plan.run import RunShape
from pebr_lit.plan.shapes import ModelShapes, VisionShapes

# Text: 2 layers, h 8, i 16, 2 heads x dim 4 (q width 8), 1 KV head (kv width 4), vocab 100, untied.
# Vision: 1 block, width 4, MLP 8, out 8, patch 2, merge 2, 1 frame, 1 channel.
VISION = VisionShapes(
    depth=1, hidden=4, intermediate=8, heads=1, out_hidden=8, patch=2, merge=2, temporal_patch=1, in_channels=1
)
SHAPES = ModelShapes(layers=2, hidden=8, intermediate=16, heads=2, kv_heads=1, vocab=100, tied=False, vision=VISION)
# Params: layer linears q 64+8, k and v 2 x (32+4), o 64, MLP 3 x 128 = 592 (+2 norms 16 = 608); x2 = 1216;
# embedding + LM head 2 x 800 = 1600; final norm 8 -> text 2824. Vision block: qkv 48+12, proj 16+4,
# gate/up 2 x (32+8), down 32+4, norms 8 = 204; patch conv 1x1x2x2x4 = 16; merger (width 16): norm 4 +
# 256+16 + 128+8 = 412 -> vision 632. Total 3456.
TOTAL = 3456

# GRPO, LoRA r 2 on all seven linears, bf16 base, checkpointing; max_pixels 64 -> 64 // (2*2)^2 = 4 tokens,
# 16 patches per image; prompt 10 + response 6 = 16 tokens; group 2, micro-batch 2, 1 prompt per generate call,
# 2 prompts per GPU.
RUN = RunShape(
    kind="grpo", model="made-up", weight_bytes=2, quant=None, lora_r=2,
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), lora_lm_only=True,
    train_vision=False, train_projector=False, checkpointing=True, max_pixels=64, prompt_len=10, response_len=6,
    group=2, micro_batch=2, prompts_per_call=1, prompts_per_gpu=2, devices=1, mixed=True, fsdp=None,
    reference="disabled", reference_on_gpu=True, clip=None,
)  # fmt: off


def parts(plan):
    return {(p.name, p.phase): p.bytes for p in plan.parts}


def test_shape_totals():
    assert SHAPES.params() == TOTAL and VISION.params() == 632


def test_lora_grpo_parts_by_hand():
    got = parts(plan_run(RUN, SHAPES))
    # LoRA r x (in + out): q 16, k 12, v 12, o 16, gate 24, up 24, down 24 = 128 -> x2 = 256 per layer, 512 in all.
    expected = {
        ("weights", "resident"): TOTAL * 2,
        ("lora", "resident"): 512 * 4,  # fp32 adapters
        ("grads", "resident"): 512 * 4,
        ("optimizer", "resident"): 2 * 512 * 4,
        ("reference", "resident"): 0,  # the disabled adapter
        ("image_inputs", "resident"): 2 * 16 * 16,  # 2 prompts x 16 patches x (1 x 1 x 2 x 2 values x 4 B fp32)
        ("cuda_context", "resident"): CUDA_CONTEXT,
        # KV per token: 2 layers x K,V x 4 width x 2 B = 32 B; 2 sequences (1 prompt x group 2).
        ("kv_cache", "prefill"): 2 * 10 * 32,
        # One no-grad layer: 10h 80 + the MLP's largest moment: with adapters on up/gate 10i 160 (silu, up, the
        # adapter's output, scaled, sum), vs the product 2i 32 + peft's fp32 copy of it 4 B x 16 = 96 -> 240 B.
        ("activations", "prefill"): 2 * 10 * 240,
        # Vision block: rotary in fp32, 36h = 144 B > 10h + 6i = 88 B; + the bf16 cast of 4 pixel values, 8 B.
        ("vision", "prefill"): 1 * 16 * (144 + 8),  # 1 image x 16 patches
        ("kv_cache", "decode"): 2 * 16 * 32,
        ("sampling", "decode"): 2 * 100 * 24,
        # 2 rows x 16 tokens = 32 tokens; the [m, S, S] bool mask 2 x 16 x 16 = 512 B.
        ("activations", "logprob"): 32 * 240 + 512,  # no dropout (RunShape's default 0): as in prefill
        # Checkpointed: 2 layers x 2h = 32 B saved per token (+ the mask), held through the update; then one layer
        # recomputed with grad: 22h 176 + 6kv 24 + 8i 128 = 328, LoRA: peft's fp32 input copy 4 B x inputs (6 x 8
        # + 16 = 64) 256 + 7 x 2r 28 = 612.
        ("activations", "update"): 32 * 32 + 512,
        ("layer", "update"): 32 * 612,
        # Both passes encode the micro-batch's images (2 rows: at most 2 prompts' images): 32 patches x (88 B one
        # no-grad block + 8 B the bf16 cast of the 4 pixel values) + features 2 images x 4 tokens x 8 x 2 B = 128.
        ("vision", "logprob"): 32 * (144 + 8) + 128,
        ("vision", "update"): 32 * (144 + 8) + 128,
        # Logits: bf16 [2, 7, 100] = 2800 B; fp32 chunk [2, 6, 100] = 4800 B; 2 chunks (no grad); in the update
        # the logits and their gradient (2 x 2800) + the one chunk's 4 (no other chunk keeps its log p).
        ("logits", "logprob"): 2800 + 2 * 4800,
        ("logits", "update"): 2 * 2800 + 4 * 4800,
    }
    assert got == pytest.approx(expected)


def test_a_pass_encodes_only_its_micro_batchs_images():
    # 8 prompts on the GPU, micro-batches of 2 rows: each log-prob/update pass encodes at most 2 prompts'
    # images (policy.logprobs encodes the scored rows' images only), the numbers of the 2-prompt run above.
    got = parts(plan_run(dataclasses.replace(RUN, prompts_per_gpu=8), SHAPES))
    assert got["vision", "logprob"] == got["vision", "update"] == 32 * (144 + 8) + 128
    assert got["image_inputs", "resident"] == 8 * 16 * 16  # the round's pixel values stay on the GPU


def test_phase_totals_and_peak():
    plan = plan_run(RUN, SHAPES, gpu_bytes=1e12)
    resident = TOTAL * 2 + 2048 + 2048 + 4096 + 512 + CUDA_CONTEXT  # weights, LoRA, grads, AdamW, pixels, context
    # Held: the saved layer inputs 1024 + mask 512; one at a time: the recomputed layer 19584, the vision 4992 and
    # the logits 24800 -> the logits.
    assert plan.phases["update"] == pytest.approx(resident + 1024 + 512 + 24800)
    assert plan.phases["logprob"] == pytest.approx(resident + 12400)  # the logits (12400) > activations (8192)
    assert plan.peak_phase == "update" and plan.fits
    small = plan_run(RUN, SHAPES, gpu_bytes=CUDA_CONTEXT)  # not even the context's room
    assert not small.fits and "does not fit" in small.verdict()
    assert "micro_batch_size" in small.knob()  # the logits are the update's largest part with a knob


def test_nf4_double_quant_bytes():
    # 2 layers x (592 - 16 biases) = 1152 LM linear weights + vision 4x16 + 3x4x8 + 256 + 128 = 544 -> 1696.
    assert nf4_bytes(64 * 256, True) == 64 * 256 / 2 + 256 + 4  # 8-bit absmax per 64, one fp32 per 256 absmax
    assert nf4_bytes(64, False) == 32 + 4
    got = parts(plan_run(replace(RUN, quant={"double_quant": True}), SHAPES))
    assert got["weights", "resident"] == pytest.approx(nf4_bytes(1696, True) + (TOTAL - 1696) * 2)
    # Each product dequantises its weight to bf16 first: the widest, h x i = 8 x 16, x 2 B, in every phase.
    assert all(got["dequantized", ph] == 128 * 2 for ph in ("prefill", "decode", "logprob", "update"))


def test_full_fine_tune_under_fsdp2_shards_and_offloads():
    fsdp = {"reshard_after_forward": True, "cpu_offload": False, "gather_for_generate": True, "param_dtype": "bfloat16"}
    run = replace(RUN, lora_r=0, lora_targets=(), weight_bytes=4, devices=4, fsdp=fsdp, reference="copy",
                  train_vision=True, train_projector=True, checkpointing=False, mixed=False)  # fmt: off
    got = parts(plan_run(run, SHAPES))
    assert got["weights", "resident"] == TOTAL * 4 / 4
    assert got["grads", "resident"] == TOTAL * 4 / 4  # every parameter trained
    assert got["optimizer", "resident"] == 2 * TOTAL * 4 / 4
    assert got["reference", "resident"] == TOTAL * 4 / 4  # sharded like the policy
    assert got["fsdp_gathered", "decode"] == TOTAL * 2  # the whole bf16 model during rollouts
    # Root unit: embeddings 1600 + final norm 8 + patch conv 16 + merger 412 = 2036; + 2 x the larger block (608).
    assert got["fsdp_gathered", "logprob"] == (2036 + 2 * 608) * 2
    assert got["fsdp_gathered", "update"] == (2036 + 2 * 608) * 2 * 2
    assert got["activations", "update"] == 32 * 2 * 328 + 512  # no checkpointing: every layer's 328 B per token
    # Trained vision, no checkpointing: 1 block x (22 x 4 + 6 x 4 + 8 x 8 = 176 B) x 32 patches + features 128.
    assert got["vision", "update"] == 32 * 176 + 128
    offloaded = parts(plan_run(replace(run, fsdp={**fsdp, "cpu_offload": True}), SHAPES))
    for name in ("weights", "grads", "optimizer", "reference"):
        assert offloaded[name, "resident"] == 0, name


def test_knob_names_checkpointing_when_activations_lead():
    run = replace(RUN, checkpointing=False, response_len=1, prompt_len=4000, max_pixels=0)
    plan = plan_run(run, SHAPES, gpu_bytes=1.0)
    assert plan.peak_phase == "update" and "gradient_checkpointing" in plan.knob()


def test_sft_logits_are_the_whole_sequence_in_bf16_and_three_fp32_copies():
    run = replace(RUN, kind="sft", response_len=0, group=1, micro_batch=1, prompts_per_call=1, prompts_per_gpu=1,
                  reference="none")  # fmt: off
    got = parts(plan_run(run, SHAPES))
    assert got["logits", "update"] == 10 * 100 * 2 + 3 * 10 * 100 * 4  # [1, 10, 100] bf16 + 3 fp32 copies
    assert ("kv_cache", "decode") not in got and ("reference", "resident") not in got


def test_chunked_log_probs_hold_hidden_states_and_one_chunk_of_logits():
    # logprob_chunk_tokens 4: bf16 hidden [2 rows, 6, 8] = 192 B; a chunk of min(4, 12) = 4 tokens x 100 vocab x
    # 4 B = 1600 B; 2 chunk copies without grad; in the update 4 (policy.chunked_head's backward) and the hidden
    # states' gradient (192).
    got = parts(plan_run(dataclasses.replace(RUN, logprob_chunk_tokens=4), SHAPES))
    assert got["logits", "logprob"] == 192 + 2 * 1600
    assert got["logits", "update"] == 2 * 192 + 4 * 1600


def test_lora_dropout_and_the_cpu_device():
    # Dropout 0.05 in train mode: peft's fp32 copy (4 B) + the mask (CUDA bool 1 B, CPU fp32 4 B) + the dropped-out
    # fp32 copy (4 B) per input feature; generate runs in eval mode, so its prefill keeps the 4 B copy only.
    assert lora_input_bytes(0.0, "cuda") == 4 and lora_input_bytes(0.05, "cuda") == 9
    assert lora_input_bytes(0.05, "cpu") == 12
    run = replace(RUN, lora_dropout=0.05)
    gpu, cpu = parts(plan_run(run, SHAPES)), parts(plan_run(run, SHAPES, device="cpu"))
    assert ("cuda_context", "resident") in gpu and ("cuda_context", "resident") not in cpu
    # The down projection's input is the MLP's product: 2i 32 + 9 x 16 = 176 (CUDA) / 2i + 12 x 16 = 224 (CPU),
    # both over 10i 160; + 10h 80.
    assert gpu["activations", "logprob"] == 32 * (80 + 176) + 512
    assert cpu["activations", "logprob"] == 32 * (80 + 224) + 512
    assert gpu["activations", "prefill"] == cpu["activations", "prefill"] == 2 * 10 * 240  # eval mode, as without
    # Saved by each adapter in the update: its mask + dropped-out copy (CUDA 1 + 4, CPU 4 + 4 B per input feature).
    assert gpu["layer", "update"] == 32 * (328 + 5 * 64 + 28)
    assert cpu["layer", "update"] == 32 * (328 + 8 * 64 + 28)


def test_rows_beyond_one_logits_chunk_keep_their_log_p_and_p_with_an_entropy_bonus():
    # 8 rows -> 2 chunks of 4 rows: bf16 [8, 7, 100] = 11200 B, chunk [4, 6, 100] fp32 = 9600 B. The first chunk
    # keeps log p (1) for backward, and p too (2) when the loss weights the entropy; the last chunk's 4 on top.
    run = replace(RUN, micro_batch=8, group=8)
    assert parts(plan_run(run, SHAPES))["logits", "update"] == 2 * 11200 + (1 + 4) * 9600
    with_bonus = parts(plan_run(replace(run, entropy_grad=True), SHAPES))
    assert with_bonus["logits", "update"] == 2 * 11200 + (2 + 4) * 9600
