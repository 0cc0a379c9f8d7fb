"""The memory planner's estimate for the shapes ``real_shape.py`` runs, phase by phase, beside what it measured.

``planned(...)`` builds the planner's ``RunShape`` for the rehearsal (LoRA r 64 on the language model, bf16 base,
bf16 autocast, gradient checkpointing, one image at ``max_pixels``, ``rows`` responses of R tokens in one micro-batch,
no reference, no CLIP scorer) on the depth-cut shapes, with ``device="cpu"`` (the few terms that differ on a CPU:
``plan.estimate``), and returns per rehearsal phase the bytes the planner predicts the phase adds to what was
resident at its start:

- ``weights resident``: the resident weights + adapters (the rehearsal touches every weight after loading);
- ``vision tower``: the prefill's vision part (one no-grad block of one image);
- ``generate``: the larger of the prefill and decode phases' own parts;
- ``logprobs no-grad *``: the log-prob phase's parts; ``train step *``: the update phase's parts + the gradients.

Left out on purpose: measuring (``real_shape.py``) and the parts the rehearsal does not hold (optimizer state, a
reference, CLIP, the CUDA context, the rollout batch's pixel values between phases).
"""

from __future__ import annotations

import dataclasses

from pebr_lit.plan.estimate import plan_run
from pebr_lit.plan.run import RunShape
from pebr_lit.plan.shapes import ModelShapes
from pebr_lit.policy.settings import DEFAULT_LORA_TARGETS


def cut(full: ModelShapes, layers: int, vision_blocks: int) -> ModelShapes:
    """``full`` with ``layers`` decoder layers and ``vision_blocks`` vision blocks."""
    return dataclasses.replace(full, layers=layers, vision=dataclasses.replace(full.vision, depth=vision_blocks))


def planned(
    hub_id: str,
    shapes: ModelShapes,
    *,
    rows: int,
    prompt_tokens: int,
    response_len: int,
    new_tokens: int,
    chunk_tokens: int,
    lora_r: int,
    lora_dropout: float,
    checkpointing: bool,
    max_pixels: int,
) -> dict[str, float]:
    """Bytes the planner predicts per rehearsal phase (keys as ``real_shape.py`` names its phases)."""

    def plan(chunk: int, response: int):
        run = RunShape(
            kind="grpo",
            model=hub_id,
            weight_bytes=2,
            quant=None,
            lora_r=lora_r,
            lora_dropout=lora_dropout,
            lora_targets=tuple(DEFAULT_LORA_TARGETS),
            lora_lm_only=True,
            train_vision=False,
            train_projector=False,
            checkpointing=checkpointing,
            max_pixels=max_pixels,
            prompt_len=prompt_tokens,
            response_len=response,
            group=rows,
            micro_batch=rows,
            prompts_per_call=1,
            prompts_per_gpu=1,
            devices=1,
            mixed=True,
            fsdp=None,
            reference="none",
            reference_on_gpu=False,
            clip=None,
            logprob_chunk_tokens=chunk,
        )
        return plan_run(run, shapes, device="cpu")

    def own(p, phase: str, names: tuple[str, ...] | None = None) -> float:
        """The phase's own bytes as the planner totals them: held parts + the largest one-at-a-time part."""
        mine = [x for x in p.parts if x.phase == phase and (names is None or x.name in names)]
        return sum(x.bytes for x in mine if not x.transient) + max((x.bytes for x in mine if x.transient), default=0)

    gen = plan(0, new_tokens)
    out = {
        "weights resident": own(gen, "resident", ("weights", "lora")),
        "vision tower": own(gen, "prefill", ("vision",)),
        "generate": max(own(gen, "prefill"), own(gen, "decode")),
    }
    for path, chunk in (("logits", 0), ("chunked", chunk_tokens)):
        p = plan(chunk, response_len)
        out[f"logprobs no-grad {path}"] = own(p, "logprob")
        out[f"train step {path}"] = own(p, "update") + own(p, "resident", ("grads",))
    return out


def measured(run: dict) -> dict[str, float]:
    """Per phase the planner predicts, the bytes ``run`` (one ``real_shape.py`` result) measured it to add: the RSS
    rise of the phase; for ``train step *`` the larger peak of its forward and backward over the forward's start."""
    phases = run["phases"]
    out = {}
    for name in run["planned"]:
        if name.startswith("train step "):
            fwd, bwd = phases[name.replace("step", "forward")], phases[name.replace("step", "backward")]
            out[name] = max(fwd["rss_peak"], bwd["rss_peak"]) - fwd["rss_start"]
        else:
            out[name] = phases[name]["rise"]
    return out


def comparison_rows(runs: list[dict]) -> list[str]:
    """Markdown rows: per depth and phase, measured (min-max over the runs), the planner and measured / planner."""
    gib = float(1 << 30)
    rows = ["| layers | phase | measured GiB | planner GiB | measured / planner |", "| --- | --- | --- | --- | --- |"]
    for depth in sorted({r["layers"] for r in runs}):
        at = [r for r in runs if r["layers"] == depth]
        for name, plan in at[0]["planned"].items():
            got = [measured(r)[name] for r in at]
            lo, hi = min(got) / gib, max(got) / gib
            cell = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"
            ratio = f"{min(got) / plan:.2f}" + (f"-{max(got) / plan:.2f}" if hi - lo >= 0.005 else "")
            rows.append(f"| {depth} | {name} | {cell} | {plan / gib:.2f} | {ratio} |")
    return rows
