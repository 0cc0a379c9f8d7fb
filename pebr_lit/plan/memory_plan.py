"""MemoryPlan: the planner's result (parts by phase, per-phase totals, the peak, a verdict) and its printed table.

Left out on purpose: how each part is derived (``plan.estimate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GB = 1e9  # decimal gigabytes throughout: a "24 GB" card has ~24-25.8e9 bytes, an "80 GB" H100 85.5e9

#: Where a phase's largest part points first when the peak does not fit.
KNOBS = {
    "logits": "lower model.init_args.micro_batch_size (the log-prob pass holds fp32 [min(micro, 4), R, V] chunks)",
    "kv_cache": "lower rollout_engine.init_args.prompts_per_call (KV cache = prompts x group x tokens)",
    "activations": "lower model.init_args.micro_batch_size (SFT: data.batch_size)",
    "rollout": "lower rollout_engine.init_args.prompts_per_call (predict: data.eval_batch_size): prefill runs "
    "prompts x group sequences at once",
    "activations_nockpt": "set policy.gradient_checkpointing: true",
    "vision": "lower data.batch_size or policy.max_pixels (every log-prob pass encodes the GPU's whole rollout "
    "batch of images)",
    "image_inputs": "lower data.batch_size or policy.max_pixels (the rollout batch's patches stay on the GPU)",
    "weights": "use the QLoRA card (_qlora_24gb.yaml: 4-bit base), or more GPUs under FSDP2",
    "optimizer": "use a LoRA card (_lora_80gb / _qlora_24gb), or FSDP2 with sharding.cpu_offload: true",
    "grads": "use a LoRA card, or FSDP2 with sharding.cpu_offload: true",
    "fsdp_gathered": "set sharding.gather_for_generate: false (one layer gathered at a time during rollouts)",
    "reference": "ReferencePolicy device: cpu, or FSDP2 with cpu_offload: true",
    "clip": "clip_scorer dtype: bfloat16",
}


@dataclass(frozen=True)
class Part:
    """One memory part of one phase on one GPU.

    Args:
        name: The part (``weights``, ``kv_cache``, ``logits``, ...).
        phase: ``resident`` (held in every phase), ``rollout``, ``logprob`` or ``update``.
        bytes: Its size in bytes.
        how: How it was derived, with the numbers.
        transient: Held during one step of its phase only (one layer's activations, the logits, the vision
            tower's): a phase holds its largest transient part, not their sum.
    """

    name: str
    phase: str
    bytes: float
    how: str
    transient: bool = False


@dataclass
class MemoryPlan:
    """Per-GPU estimate of a stage: parts, the total of each phase (resident parts + its own), the peak.

    Args:
        parts: Every part, resident ones first.
        gpu_bytes: The card's memory, or ``None`` when unknown (no verdict then).
        devices: GPUs the estimate is for.
        notes: Assumptions worth reading next to the figures.
    """

    parts: list[Part]
    gpu_bytes: float | None
    devices: int
    notes: list[str] = field(default_factory=list)

    @property
    def phases(self) -> dict[str, float]:
        """Bytes of each non-resident phase: the resident parts, the phase's held parts and its largest transient."""
        resident = sum(p.bytes for p in self.parts if p.phase == "resident")
        out = {}
        for ph in dict.fromkeys(p.phase for p in self.parts if p.phase != "resident"):
            own = [p for p in self.parts if p.phase == ph]
            held = sum(p.bytes for p in own if not p.transient)
            out[ph] = resident + held + max((p.bytes for p in own if p.transient), default=0.0)
        return out

    @property
    def peak_phase(self) -> str:
        return max(self.phases.items(), key=lambda kv: kv[1])[0]

    @property
    def peak(self) -> float:
        """The largest phase total in bytes: what the card must hold."""
        return max(self.phases.values())

    @property
    def fits(self) -> bool | None:
        return None if self.gpu_bytes is None else self.peak <= self.gpu_bytes

    def knob(self) -> str:
        """The first knob to turn: the one behind the largest part of the peak phase that has one."""
        phase = self.peak_phase
        parts = sorted((p for p in self.parts if p.phase in ("resident", phase)), key=lambda p: -p.bytes)
        for part in parts:
            key = part.name
            if key == "activations" and "without checkpointing" in part.how:
                key = "activations_nockpt"
            elif key in ("activations", "kv_cache", "vision") and part.phase in ("prefill", "decode"):
                key = "rollout"
            if key in KNOBS:
                return KNOBS[key]
        return "a bigger card"

    def verdict(self) -> str:
        if self.gpu_bytes is None:
            return f"peak {self.peak / GB:.1f} GB per GPU; give --gpu-gb for a verdict"
        head = f"peak {self.peak / GB:.1f} GB per GPU ({self.peak_phase}) on a {self.gpu_bytes / GB:.0f} GB card"
        if self.fits:
            spare = 1 - self.peak / self.gpu_bytes
            return f"fits: {head}, {spare:.0%} spare" + ("; tight (allocator slack is not counted)" * (spare < 0.1))
        return f"does not fit: {head}; first knob: {self.knob()}"

    def table(self) -> str:
        """The printed table: part, phase, GB, how it was derived; then the phase totals and the verdict."""
        rows = [f"{'part':<16} {'phase':<9} {'GB':>7}  how"]
        rows += [
            f"{p.name:<16} {p.phase:<9} {p.bytes / GB:>7.2f}  " + ("(one at a time) " * p.transient) + p.how
            for p in self.parts
        ]
        rows.append("")
        rows += [
            f"{'total':<16} {ph:<9} {b / GB:>7.2f}  resident + {ph} (its largest one-at-a-time part only)"
            for ph, b in self.phases.items()
        ]
        rows += ["", f"devices: {self.devices}; estimated (planner), not measured", *self.notes, self.verdict()]
        return "\n".join(rows)
