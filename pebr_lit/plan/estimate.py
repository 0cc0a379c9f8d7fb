"""The planner's arithmetic: a resolved stage config + model shapes -> per-GPU bytes by part and phase.

``estimate(config, gpu_gb, devices)`` is the entry point (``plan_run`` takes a ``RunShape`` and shapes directly,
e.g. a depth-cut model). Phases, each = the resident parts + its own, the peak = the largest:

- ``prefill`` / ``decode``: a ``generate`` call (``prompts_per_call x group`` sequences) at the end of the prompt
  and at the end of the longest response; ``logprob``: the no-grad old-policy and reference passes;
  ``reward``: the CLIP scorer's forward (stage 1); ``update``: forward + backward of one micro-batch.
- Resident: weights, adapters, gradients (``zero_grad`` runs at each mini-batch's start, so they outlive the
  step), AdamW state, the reference, the CLIP scorer and the rollout batch's image patches.

The activation and logit counts follow the code as it is (``policy/logprobs.py``: bf16 logits for the response
positions plus fp32 chunks of ``chunk_rows=4`` rows; every log-prob pass encodes the whole per-GPU rollout batch's
images) and Hugging Face's Qwen2 modules (RMSNorm in fp32, SwiGLU MLP, SDPA memory-efficient attention: no
``S x S`` score matrix). Each count is a bytes-per-token sum written out where it is used.

Left out on purpose: reading the config (``plan.run``), the model shapes (``plan.shapes``), printing
(``plan.memory_plan``), allocator fragmentation, and sglang engines (their memory is the engine's own).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pebr_lit.plan.memory_plan import GB, MemoryPlan, Part
from pebr_lit.plan.run import DTYPE_BYTES, RunShape, run_shape
from pebr_lit.plan.shapes import ModelShapes, model_shapes

CUDA_CONTEXT = 0.8e9  # assumed: CUDA context + cuBLAS workspace, outside torch's allocator peaks
CHUNK_ROWS = 4  # policy/logprobs.py: token_logprobs(chunk_rows=4)
FGCLIP_PARAMS = 0.45e9  # assumed for a scorer without a local config.json: FG-CLIP-large (CLIP ViT-L/14-336 + text)


def nf4_bytes(n: float, double_quant: bool) -> float:
    """Bytes of ``n`` weights in bitsandbytes 4-bit: 0.5 B each + one absmax per 64 (fp32, or 8-bit with an fp32
    constant per 256 absmax when double-quantised)."""
    return n * 0.5 + (n / 64 + n / 64 / 256 * 4 if double_quant else n / 64 * 4)


def nograd_token_bytes(hidden: int, inter: int, lora_up: bool = False, lora_down: float = 0.0) -> float:
    """Transient bytes per token of one no-grad layer, bf16: residual, normed and attention-out hidden (3h x 2 B),
    the RMSNorm's fp32 copy (4h); in the MLP the larger of: silu(gate), up and their product (3i x 2 B), with an
    adapter on up_proj its output, scaled output and sum (+2 x 2i; measured, ``benchmarks/real_shape.py``); and the
    product (2i) with the down projection adapter's copies of it (``lora_down`` bytes per feature)."""
    return 10 * hidden + max((10 if lora_up else 6) * inter, 2 * inter + lora_down * inter)


def vision_token_bytes(hidden: int, inter: int) -> int:
    """Transient bytes per patch of one no-grad vision block: the larger of the MLP (as ``nograd_token_bytes``) and
    the attention's rotary embedding, which Qwen2-VL's blocks apply in fp32: residual, norms and q/k/v (10h + 6h)
    with q in fp32 and k's fp32 copy, rotated half and the two products (5 x 4h) in flight (measured:
    ``benchmarks/real_shape.py``'s vision-tower phase)."""
    return max(36 * hidden, 10 * hidden + 6 * inter)


def lora_input_bytes(dropout: float, device: str) -> int:
    """Bytes per input feature an adapter adds to its linear's input: peft's fp32 copy of it (4 B) and, with dropout,
    the mask (1 B bool on CUDA; 4 B on CPU, whose dropout draws an fp32 mask) and the fp32 dropped-out copy (4 B)."""
    mask = 4 if device == "cpu" else 1
    return 4 + (mask + 4 if dropout > 0 else 0)


def grad_token_bytes(hidden: int, kv_width: int, inter: int, lora_in: list[int], r: int, lora_saved: int = 0) -> int:
    """Saved-for-backward bytes per token of one decoder layer, bf16 (fp32 where the module upcasts).

    Attention: two RMSNorms' fp32 + bf16 copies (2 x 6h), q/k/v input (2h), q, k before and after rotary
    (2 x (2h + 2kv)), v (2kv), attention output (2h); MLP: gate/up input (2h), gate, silu(gate), up, their
    product (4 x 2i). LoRA: per adapted linear what its adapter saves of the input (``lora_saved`` bytes per input
    feature: the fp32 copy or the dropout mask and output) and the rank-r bottleneck (2r).
    """
    return 22 * hidden + 6 * kv_width + 8 * inter + sum(lora_saved * width + 2 * r for width in lora_in)


def _lora_dims(s: ModelShapes, targets: tuple[str, ...]) -> list[tuple[int, int]]:
    """(in, out) of each adapted linear of one decoder layer."""
    q, kv, h, i = s.heads * s.dim, s.kv_heads * s.dim, s.hidden, s.intermediate
    dims = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h)}
    dims |= {"gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    return [dims[t] for t in targets if t in dims]


def _vision_linear_weights(s: ModelShapes) -> int:
    v = s.vision
    wide = v.hidden * v.merge**2
    return (
        v.depth * (4 * v.hidden**2 + (3 if v.gated_mlp else 2) * v.hidden * v.intermediate)
        + wide**2
        + wide * v.out_hidden
    )


def _clip_params(clip: dict[str, Any]) -> tuple[float, str]:
    """A CLIP scorer's parameter count from its local HF config.json (vision + text towers), else the assumption."""
    path = Path(str(clip.get("model_name_or_path", ""))) / "config.json"
    if path.is_file():
        cfg = json.loads(path.read_text())
        total = 0.0
        for key in ("vision_config", "text_config"):
            t = cfg.get(key) or {}
            h, i, n = t.get("hidden_size", 0), t.get("intermediate_size", 0), t.get("num_hidden_layers", 0)
            total += n * (4 * h * h + 2 * h * i + 9 * h + i)  # attention + MLP with biases, two LayerNorms
            total += t.get("vocab_size", 0) * h + t.get("max_position_embeddings", 0) * h
            total += ((t.get("image_size", 0) // max(t.get("patch_size", 1), 1)) ** 2 + 1) * h
            total += 3 * t.get("patch_size", 0) ** 2 * h + cfg.get("projection_dim", 768) * h
        return total, f"{total / 1e9:.2f} B params from {path}"
    return FGCLIP_PARAMS, f"{FGCLIP_PARAMS / 1e9:.2f} B params assumed (FG-CLIP-large; no local config.json)"


def plan_run(run: RunShape, s: ModelShapes, gpu_bytes: float | None = None, device: str = "cuda") -> MemoryPlan:
    """The ``MemoryPlan`` of ``run`` on a model of shapes ``s`` (bytes per GPU).

    ``device="cpu"`` plans the same run in host memory (``benchmarks/real_shape.py`` compares it with what a CPU
    measures): no CUDA context, and LoRA dropout masks of 4 bytes instead of 1.
    """
    parts: list[Part] = []

    def add(name: str, phase: str, n: float, how: str, transient: bool = False) -> None:
        parts.append(Part(name, phase, float(n), how, transient))

    v, lm_layers, d = s.vision, s.layers, s.dim
    kv_width = s.kv_heads * d
    fsdp, n_dev = run.fsdp, run.devices
    shard = n_dev if fsdp else 1
    on_gpu = 0.0 if fsdp and fsdp["cpu_offload"] else 1.0  # cpu_offload keeps shards, grads and AdamW on the host
    compute = 2 if (run.mixed or run.quant or (fsdp and fsdp.get("param_dtype"))) else run.weight_bytes
    gather_b = DTYPE_BYTES.get(str((fsdp or {}).get("param_dtype")), run.weight_bytes)
    img_tokens = run.max_pixels // (v.patch * v.merge) ** 2 if run.max_pixels else 0  # 802816 px -> 1024
    patches = img_tokens * v.merge**2
    prompt = max(run.prompt_len, img_tokens)  # one image per prompt, its tokens inside the prompt length
    seq = prompt + run.response_len

    # ---- resident: weights, adapters, gradients, optimizer, reference, scorer, image inputs, context
    total = s.params()
    if run.quant:
        lm_w = lm_layers * (s.layer_linear_params() - s.heads * d - 2 * kv_width)  # linear weights, biases apart
        q_w = lm_w + _vision_linear_weights(s)
        q_bytes = nf4_bytes(q_w, run.quant["double_quant"])
        rest = total - q_w
        dq = "double-quantised" if run.quant["double_quant"] else "fp32 absmax"
        add(
            "weights",
            "resident",
            q_bytes + rest * 2,
            f"nf4 {q_w / 1e9:.2f} B linear weights ({dq}) "
            f"{q_bytes / GB:.2f} GB + {rest / 1e9:.2f} B in bf16 (embeddings, LM head, norms, biases, patch conv)",
        )
    else:
        add(
            "weights",
            "resident",
            total * run.weight_bytes / shard * on_gpu,
            f"{total / 1e9:.2f} B params x {run.weight_bytes} B"
            + (f" / {n_dev} shards" if fsdp else "")
            + (" on the host (cpu_offload)" if not on_gpu else ""),
        )
    if run.lora_r:
        dims = _lora_dims(s, run.lora_targets)
        lora = lm_layers * sum(run.lora_r * (i + o) for i, o in dims)
        if not run.lora_lm_only:  # the vision MLP shares gate/up/down_proj names
            lora += v.depth * sum(
                run.lora_r * (v.hidden + v.intermediate)
                for t in run.lora_targets
                if t in ("gate_proj", "up_proj", "down_proj")
            )
        trainable, tb = lora, 4  # peft keeps adapters in fp32 over a bf16 / 4-bit base
        add("lora", "resident", lora * 4, f"{lora / 1e6:.1f} M adapter params (r {run.lora_r}) x 4 B")
    else:
        vis_blocks = v.depth * v.block_params() + v.patch_embed_params()
        trainable = s.text_params() + vis_blocks * run.train_vision + v.merger_params() * run.train_projector
        tb = run.weight_bytes
    grad_share = tb / (shard if not run.lora_r else 1) * (on_gpu if not run.lora_r else 1)
    where = f" / {n_dev} shards" if fsdp and not run.lora_r else ""
    if run.kind != "predict":
        add("grads", "resident", trainable * grad_share, f"{trainable / 1e9:.3f} B trainable x {tb} B{where}")
        add("optimizer", "resident", 2 * trainable * grad_share, f"AdamW exp_avg + exp_avg_sq: 2 x {tb} B{where}")
    ref = {"none": 0.0, "disabled": 0.0, "adapter": trainable * 4}.get(run.reference, total * run.weight_bytes / shard)
    if run.reference == "copy" and (not run.reference_on_gpu or not on_gpu):
        ref = 0.0
    if run.reference != "none":
        add(
            "reference",
            "resident",
            ref,
            {
                "disabled": "LoRA base with the adapter disabled: no copy",
                "adapter": "a second (frozen) fp32 adapter",
            }.get(run.reference, f"a copy of the weights{where}" + (" on the host" if not ref else "")),
        )
    if run.clip:
        n_clip, how = _clip_params(run.clip)
        cb = DTYPE_BYTES.get(str(run.clip.get("dtype", "float32")), 4)
        add("clip", "resident", n_clip * cb * str(run.clip.get("device", "cpu")).startswith("cuda"), f"{how} x {cb} B")
        batch = int(run.clip.get("batch_size", 32))
        tokens = batch * ((int(run.clip.get("image_size", 336)) // 14) ** 2 + 1)
        add(
            "clip_forward",
            "reward",
            tokens * nograd_token_bytes(1024, 4096) * cb / 2,
            f"{batch} images x ViT-L/14 tokens, one no-grad layer in flight",
        )
    pix_bytes = v.in_channels * v.temporal_patch * v.patch**2 * 4  # fp32 pixel_values rows from the processor
    if run.kind == "grpo" and patches:
        add(
            "image_inputs",
            "resident",
            run.prompts_per_gpu * patches * pix_bytes,
            f"{run.prompts_per_gpu} prompts x {patches} patches x {pix_bytes} B (fp32 pixel_values)",
        )
    if device != "cpu":
        add("cuda_context", "resident", CUDA_CONTEXT, "assumed; not in torch allocator peaks")

    # ---- FSDP2 gathered units: root (embeddings, LM head, patch conv, merger) + 2 blocks (current + prefetch)
    if fsdp:
        root = s.embedding_params() + s.hidden + v.patch_embed_params() + v.merger_params()
        units = root + 2 * max(s.layer_params(), v.block_params())
        whole = total * gather_b if fsdp["gather_for_generate"] else units * gather_b
        for phase in ("prefill", "decode"):
            add(
                "fsdp_gathered",
                phase,
                whole,
                "the whole model gathered (gather_for_generate)"
                if fsdp["gather_for_generate"]
                else "root unit + 2 blocks gathered",
            )
        for phase in ("logprob", "update"):
            add(
                "fsdp_gathered",
                phase,
                units * gather_b * (2 if phase == "update" else 1),
                f"root unit + 2 blocks in {gather_b} B" + (" + their unsharded gradients" * (phase == "update")),
            )
    elif run.mixed and not run.lora_r and run.weight_bytes == 4:
        for phase in ("logprob", "update"):
            add("autocast_copies", phase, total * 2, "bf16 copies of every fp32 weight cached by autocast")

    # ---- a 4-bit layer dequantises its weight to the compute dtype for each product (bitsandbytes): one at a time
    if run.quant:
        widest = max(s.hidden * s.intermediate, s.heads * d * s.hidden, v.hidden * v.intermediate)
        for phase in ("prefill", "decode", "logprob", "update"):
            add(
                "dequantized", phase, widest * compute, f"the widest 4-bit linear ({widest / 1e6:.0f} M) in {compute} B"
            )

    # ---- LoRA's copies of an adapted linear's input (peft casts it to the adapters' fp32, then drops out)
    # generate runs in eval mode (no dropout); the log-prob passes in train mode, as the update (dropout on).
    down = run.lora_r and "down_proj" in run.lora_targets  # the widest input: the MLP's product
    up = bool(run.lora_r) and bool({"up_proj", "gate_proj"} & set(run.lora_targets))
    ng_gen = nograd_token_bytes(s.hidden, s.intermediate, up, lora_input_bytes(0.0, device) if down else 0)
    ng_lm = nograd_token_bytes(s.hidden, s.intermediate, up, lora_input_bytes(run.lora_dropout, device) if down else 0)

    # ---- rollouts: prefill (vision + prompt forward) and decode (KV cache at its longest)
    if run.kind in ("grpo", "predict"):
        n = run.prompts_per_call * run.group
        kv_tok = lm_layers * 2 * kv_width * compute  # per token per sequence: K and V of every layer
        kv_how = f"{lm_layers} layers x 2 x {s.kv_heads} KV heads x {d} x {compute} B"
        add("kv_cache", "prefill", n * prompt * kv_tok, f"{n} seqs x {prompt} prompt tokens x {kv_how}")
        add(
            "activations",
            "prefill",
            n * prompt * ng_gen,
            f"{n} seqs x {prompt} tokens x {ng_gen:.0f} B, one no-grad layer (eval mode: no LoRA dropout)",
            transient=True,
        )
        if patches:
            t_v = run.prompts_per_call * patches
            add(
                "vision",
                "prefill",
                t_v * (vision_token_bytes(v.hidden, v.intermediate) + pix_bytes // 2),
                f"{run.prompts_per_call} images x {patches} patches, one no-grad block",
                transient=True,
            )
        add("kv_cache", "decode", n * seq * kv_tok, f"{n} seqs x {seq} tokens x {kv_how}")
        add(
            "sampling",
            "decode",
            n * s.vocab * 24,
            f"{n} x {s.vocab} vocab x 24 B (fp32 logits, top-p sort + indices)",
            transient=True,
        )
    if run.kind == "predict":
        return MemoryPlan(parts, gpu_bytes, n_dev, _notes(run, img_tokens))

    # ---- log-prob passes (no grad) and the update (grad), one micro-batch of m rows at S tokens
    m = run.micro_batch
    tokens = m * seq
    mask = m * seq * seq if run.kind == "grpo" else 0  # SDPA's boolean [m, 1, S, S] padding mask
    if run.kind == "grpo":
        add(
            "activations",
            "logprob",
            tokens * ng_lm + mask,
            f"{m} rows x {seq} tokens x {ng_lm:.0f} B, one no-grad layer + the [m, S, S] bool mask",
            transient=True,
        )
    lin = [i for i, _ in _lora_dims(s, run.lora_targets)] if run.lora_r else []
    lora_saved = (4 if device == "cpu" else 1) + 4 if run.lora_dropout > 0 else 4  # mask + output, or the fp32 copy
    per_layer = grad_token_bytes(s.hidden, kv_width, s.intermediate, lin, run.lora_r, lora_saved)
    if run.checkpointing:
        act = tokens * lm_layers * 2 * s.hidden
        act_how = f"{m} x {seq} tokens x {lm_layers} layers x 2h B saved inputs (checkpointed)"
        add("activations", "update", act + mask, act_how)
        add("layer", "update", tokens * per_layer, f"{m} x {seq} tokens x {per_layer} B: one layer recomputed", True)
    else:
        act = tokens * lm_layers * per_layer
        act_how = f"{m} x {seq} tokens x {lm_layers} layers x {per_layer} B, without checkpointing"
        add("activations", "update", act + mask, act_how)
    # A pass encodes the images of its micro-batch's prompts only (policy.logprobs): at most m distinct prompts.
    images = min(m, run.prompts_per_gpu) if run.kind == "grpo" else m
    if patches:
        t_v = images * patches
        feats = images * img_tokens * v.out_hidden * 2
        nog = t_v * (vision_token_bytes(v.hidden, v.intermediate) + pix_bytes // 2) + feats
        nog_how = f"{images} images x {patches} patches, one no-grad block + features"
        if run.kind == "grpo":
            add("vision", "logprob", nog, nog_how, transient=True)
        if run.train_vision:
            vb = grad_token_bytes(v.hidden, v.hidden, v.intermediate, [], 0)
            keep = v.depth * 2 * v.hidden + vb if run.checkpointing else v.depth * vb
            add(
                "vision",
                "update",
                t_v * keep + feats,
                f"{images} images x {patches} patches trained "
                + ("(checkpointed blocks)" if run.checkpointing else f"x {v.depth} blocks x {vb} B"),
            )
        else:
            add("vision", "update", nog, nog_how + " (frozen)", transient=True)
    if run.kind == "grpo" and run.logprob_chunk_tokens:
        # policy.logprob_chunk_tokens: the final hidden states [m, R, h] in bf16, then the LM head per chunk of
        # k tokens: fp32 logits and log-softmax (x2) without entropy, + exp and their product (x4) with it; in
        # backward (policy.chunked_head) one chunk's logits, log p, p and the gradient (x4), and the hidden states'
        # gradient. The model's own [m, 1, V] output row is negligible.
        k, r = run.logprob_chunk_tokens, run.response_len
        hidden = m * r * s.hidden * 2
        chunk = min(k, m * r) * s.vocab * 4
        how = f"bf16 hidden [{m}, {r}, {s.hidden}] + {{n}} fp32 [{min(k, m * r)}, {s.vocab}] chunks (chunk_tokens)"
        add("logits", "logprob", hidden + 2 * chunk, how.format(n=2), transient=True)
        add("logits", "update", 2 * hidden + 4 * chunk, how.format(n=4) + " and the hidden's gradient", True)
    elif run.kind == "grpo":
        c = min(CHUNK_ROWS, m)
        r = run.response_len
        bf16 = m * (r + 1) * s.vocab * 2
        chunk = c * r * s.vocab * 4
        # Each chunk keeps log p for backward (and p, when the loss weights the entropy); the last chunk's forward
        # holds its fp32 copy, log p, p and their product at once, its backward the gradients (measured: 4 in all).
        kept = (2 if run.entropy_grad else 1) * (math.ceil(m / c) - 1)
        extra = kept + 4
        add(
            "logits",
            "logprob",
            bf16 + 2 * chunk,
            f"bf16 [{m}, {r + 1}, {s.vocab}] + 2 fp32 [{c}, {r}, V] chunks",
            transient=True,
        )
        add(
            "logits",
            "update",
            2 * bf16 + extra * chunk,
            f"2 bf16 [{m}, {r + 1}, V] (logits, their gradient) + {extra} fp32 [{c}, {r}, V] chunks (one chunk's "
            "forward or backward, the others' saved log p" + (" and p)" if run.entropy_grad else ")"),
            transient=True,
        )
    else:
        bf16 = tokens * s.vocab * 2
        add(
            "logits",
            "update",
            bf16 + 3 * bf16 * 2,
            f"bf16 [{m}, {seq}, {s.vocab}] + 3 fp32 copies (HF loss upcast, log-softmax, its gradient)",
            transient=True,
        )
    return MemoryPlan(parts, gpu_bytes, n_dev, _notes(run, img_tokens))


def _notes(run: RunShape, img_tokens: int) -> list[str]:
    notes = (
        [f"assumed: one image per prompt at max_pixels {run.max_pixels} ({img_tokens} tokens)"] if img_tokens else []
    )
    return notes


def estimate(
    config: dict[str, Any],
    gpu_gb: float | None = None,
    devices: int | None = None,
    subcommand: str = "fit",
    shapes: ModelShapes | None = None,
) -> MemoryPlan:
    """Per-GPU memory plan of a resolved config (``cli.py ... --print_config``'s dict).

    ``gpu_gb``: the card's memory in GB (1e9 bytes) for the verdict; ``devices``: overrides the trainer's GPU
    count; ``subcommand``: ``predict`` plans generation only; ``shapes``: overrides the model's (e.g. a depth cut).
    """
    run = run_shape(config, devices=devices, subcommand=subcommand)
    s = shapes if shapes is not None else model_shapes(run.model)
    return plan_run(run, s, gpu_gb * GB if gpu_gb else None)
