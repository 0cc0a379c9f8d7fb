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
from typing import Any

from pebr_lit.plan.estimate import plan_run
from pebr_lit.plan.run import RunShape
from pebr_lit.plan.shapes import ModelShapes
from pebr_lit.policy.settings import DEFAULT_LORA_TARGETS


def cut(full: ModelShapes, layers: int, vision_blocks: int) -> ModelShapes:
    """``full`` with ``layers`` decoder layers and ``vision_blocks`` vision blocks."""
    return dataclasses.replace(full, layers=layers, vision=dataclasses.replace(full.vision, depth=vision_blocks))


def _run_shape(
    hub_id: str,
    chunk: int,
    response: int,
    *,
    rows: int,
    prompt_tokens: int,
    lora_r: int,
    lora_dropout: float,
    checkpointing: bool,
    max_pixels: int,
    **_: object,
) -> RunShape:
    """The planner's ``RunShape`` of the rehearsal at log-prob chunk ``chunk`` (0 = logits) and response length."""
    return RunShape(
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


def planned(
    hub_id: str,
    shapes: ModelShapes,
    *,
    response_len: int,
    new_tokens: int,
    chunk_tokens: int,
    **shape: Any,
) -> dict[str, float]:
    """Bytes the planner predicts per rehearsal phase (keys as ``real_shape.py`` names its phases); ``shape``: the
    rest of ``_run_shape``'s keywords (rows, prompt_tokens, lora_r, lora_dropout, checkpointing, max_pixels)."""

    def plan(chunk: int, response: int):
        return plan_run(_run_shape(hub_id, chunk, response, **shape), shapes, device="cpu")

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
            lo, hi = f"{min(got) / gib:.2f}", f"{max(got) / gib:.2f}"
            cell = lo if lo == hi else f"{lo}-{hi}"
            r_lo, r_hi = f"{min(got) / plan:.2f}", f"{max(got) / plan:.2f}"
            ratio = r_lo if r_lo == r_hi else f"{r_lo}-{r_hi}"
            rows.append(f"| {depth} | {name} | {cell} | {plan / gib:.2f} | {ratio} |")
    return rows


def _peak_over_base(run: dict, name: str) -> float:
    """The phase's peak RSS above the process's RSS before any model existed (train step: forward or backward)."""
    phases = run["phases"]
    if name.startswith("train step "):
        peak = max(phases[name.replace("step", s)]["rss_peak"] for s in ("forward", "backward"))
    else:
        peak = phases[name]["rss_peak"]
    return peak - run["rss_base"]


def full_depth_rows(runs: list[dict], full: ModelShapes, hub_id: str, **shape: object) -> list[str]:
    """Markdown rows: per phase the measured peak above the start-up RSS extrapolated linearly in depth (per-layer
    step = difference of the two depths' means) to ``full.layers``, beside the planner's total at that depth
    (resident weights + adapters, + gradients for a train step, + the phase's own; vision blocks as measured)."""
    gib = float(1 << 30)
    lo, hi = sorted({r["layers"] for r in runs})[:: len({r["layers"] for r in runs}) - 1]
    vision_blocks = runs[0]["vision_blocks"]
    own = planned(hub_id, cut(full, full.layers, vision_blocks), **shape)
    resident = own.pop("weights resident")
    rows = [
        f"| phase | measured peak, {lo} layer(s) | {hi} layers | per layer | extrapolated to {full.layers} "
        f"| planner at {full.layers} | extrapolated / planner |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    grads = _grads(hub_id, cut(full, full.layers, vision_blocks), **shape)
    for name, phase_own in own.items():
        mean = {
            d: sum(_peak_over_base(r, name) for r in runs if r["layers"] == d) / sum(r["layers"] == d for r in runs)
            for d in (lo, hi)
        }
        step = (mean[hi] - mean[lo]) / (hi - lo)
        extrapolated = mean[hi] + (full.layers - hi) * step
        plan = resident + phase_own + (grads if name.startswith("train step") else 0.0)
        rows.append(
            f"| {name} | {mean[lo] / gib:.2f} | {mean[hi] / gib:.2f} | {step / gib:.3f} | {extrapolated / gib:.2f} "
            f"| {plan / gib:.2f} | {extrapolated / plan:.2f} |"
        )
    return rows


def _grads(hub_id: str, shapes: ModelShapes, **shape: object) -> float:
    """The planner's gradient bytes (the adapters', fp32) for the rehearsal's run."""
    from pebr_lit.plan.estimate import plan_run

    run = _run_shape(hub_id, 0, int(shape["response_len"]), **shape)
    return sum(p.bytes for p in plan_run(run, shapes, device="cpu").parts if p.name == "grads")


def shape_args(run: dict) -> dict[str, object]:
    """``planned``'s keyword arguments from one ``real_shape.py`` result (its recorded settings)."""
    return dict(
        rows=run["rows"],
        prompt_tokens=run["prompt_tokens"],
        response_len=run["response_len"],
        new_tokens=run["new_tokens"],
        chunk_tokens=run["chunk_tokens"],
        lora_r=run.get("lora_r", 64),
        lora_dropout=run.get("lora_dropout", 0.05),
        checkpointing=run.get("checkpointing", True),
        max_pixels=run.get("max_pixels", 802816),
    )


def main(argv: list[str] | None = None) -> int:
    """Print both tables for saved ``real_shape.py --json`` results, the planner's figures recomputed now."""
    import argparse
    import json
    from pathlib import Path

    from pebr_lit.plan.shapes import SHAPES

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="real_shape.py --json files")
    args = parser.parse_args(argv)
    hubs = {"3b": "Qwen/Qwen2.5-VL-3B-Instruct", "7b": "Qwen/Qwen2.5-VL-7B-Instruct"}
    for path in args.results:
        data = json.loads(path.read_text())
        runs = data.get("runs", [data])
        hub = hubs[runs[0]["size"]]
        for r in runs:
            r["planned"] = planned(hub, cut(SHAPES[hub], r["layers"], r["vision_blocks"]), **shape_args(r))
        print(f"\n{path}: what each phase adds, measured (RSS) and planned (device cpu)")
        print("\n".join(comparison_rows(runs)))
        if len({r["layers"] for r in runs}) > 1:
            print(f"\n{path}: full depth, GiB above the start-up RSS")
            print("\n".join(full_depth_rows(runs, SHAPES[hub], hub, **shape_args(runs[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
