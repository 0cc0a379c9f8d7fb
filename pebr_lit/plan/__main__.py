"""``python -m pebr_lit.plan --config <stage>.yaml [--gpu-gb 24] [--devices N]``: print a stage's per-GPU memory plan.

The config is composed exactly as ``cli.py`` composes it (``# overlay-of:`` bases expanded, defaults filled in,
through ``cli.py <sub> --print_config``); nothing is built or downloaded. The subcommand is the header's
``# Run: python cli.py <sub>`` line (``fit`` when none). Without ``--gpu-gb`` the card is read from the file
name (``_24gb``, ``_80gb``, ``_8x80gb``) and, failing that, no verdict is given. Always exits 0 on a plan.

Left out on purpose: the arithmetic (``plan.estimate``) and the fit-start warning (``plan.fit_check``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from pebr_lit.plan.estimate import estimate
from pebr_lit.plan.memory_plan import MemoryPlan

_CARD = re.compile(r"(\d+)gb")


def _cli() -> Any:
    """The repository's ``cli`` module (its overlays and ``--print_config`` are what a run resolves)."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:  # cli.py sits at the repository root, next to pebr_lit/
        sys.path.insert(0, root)
    import cli

    return cli


def resolved_config(path: str, subcommand: str) -> dict[str, Any]:
    """The config ``cli.py <subcommand> --config <path> --print_config`` prints, as a dict."""
    try:
        return _cli().printed_config(path, subcommand)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def card_gb(path: str) -> float | None:
    """The card size a config's file name names (``stage2_qlora_24gb.yaml`` -> 24; the FSDP files -> 80)."""
    match = _CARD.findall(Path(path).stem)
    if match:
        return float(match[-1])
    return 80.0 if not re.search(r"_(q?lora)", Path(path).stem) and "qwen2_5_vl" in path else None


def plan_file(path: str, gpu_gb: float | None = None, devices: int | None = None) -> MemoryPlan:
    """The memory plan of one config file, composed as the CLI composes it."""
    sub = _cli().run_subcommand(path)
    return estimate(resolved_config(path, sub), gpu_gb=gpu_gb or card_gb(path), devices=devices, subcommand=sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a stage config (overlays expand as in cli.py)")
    parser.add_argument(
        "--gpu-gb", type=float, default=None, help="memory per GPU in GB (1e9 B); default: the file name's card"
    )
    parser.add_argument(
        "--devices", type=int, default=None, help="GPUs; default: the config's trainer.devices x num_nodes"
    )
    args = parser.parse_args(argv)
    plan = plan_file(args.config, args.gpu_gb, args.devices)
    print(f"{args.config} ({_cli().run_subcommand(args.config)}): per GPU")
    print(plan.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
