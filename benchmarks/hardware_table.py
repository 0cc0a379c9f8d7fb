"""Print docs/hardware.md's table: the planner's per-GPU peak and verdict for every shipped real-scale config.

Runs ``pebr_lit.plan`` over ``configs/qwen2_5_vl_*/`` (each file composed as ``cli.py`` composes it; nothing is
built or downloaded) and prints a Markdown table: model, stage, card, GPUs, peak per GPU, the peak's phase, the
verdict and its first knob. Every figure is an estimate; measured figures are added by hand once they exist.

    python benchmarks/hardware_table.py > docs/hardware_table.md

Left out on purpose: measuring anything (the rehearsal and GPU scripts do).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pebr_lit.plan.__main__ import plan_file  # noqa: E402  (after the repository root is importable)
from pebr_lit.plan.memory_plan import GB  # noqa: E402

CARDS = {"qlora_24gb": "QLoRA, 1 x 24 GB", "lora_80gb": "LoRA, 1 x 80 GB", "": "authors': 8 x 80 GB"}


def rows() -> list[str]:
    out = []
    for path in sorted(ROOT.glob("configs/qwen2_5_vl_*/*.yaml")):
        if path.name.startswith("_"):
            continue
        model = "Qwen2.5-VL-" + path.parent.name.removeprefix("qwen2_5_vl_").upper()
        match = re.match(r"(sft|sample|stage1|stage2)_?(.*)", path.stem)
        stage, card = (match.group(1), match.group(2)) if match else (path.stem, "")
        plan = plan_file(str(path.relative_to(ROOT)))
        spare = 1 - plan.peak / plan.gpu_bytes
        verdict = f"fits ({spare:.0%} spare)" if plan.fits else f"does not fit; first knob: {plan.knob()}"
        out.append(
            f"| {model} | {stage} | {CARDS.get(card, card)} | {plan.devices} "
            f"| {plan.peak / GB:.1f} ({plan.peak_phase}) | {verdict} | none yet |"
        )
    return out


def main() -> int:
    print(
        "| model | stage | card | GPUs | planner peak per GPU, GB (phase): estimated (planner) | verdict | measured |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows():
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
