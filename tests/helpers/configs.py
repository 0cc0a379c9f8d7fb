"""Shipped configs for tests: which ones are real-scale, and a node's arguments.

A config as the CLI composes it is ``cli.printed_config(path)`` (its subcommand ``cli.run_subcommand``), so a
test can read e.g. ``cfg["trainer"]["precision"]`` or ``cfg["model"]["init_args"]["policy"]``.

Left out on purpose: any assertion (the tests that read the configs make their own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def real_scale_configs() -> list[Path]:
    """Every launchable YAML under ``configs/qwen2_5_vl_*/`` (``_``-prefixed bases are partials, left out)."""
    return sorted(p for p in ROOT.glob("configs/qwen2_5_vl_*/**/*.yaml") if not p.name.startswith("_"))


def init_args(node: Any) -> dict[str, Any]:
    """A ``{class_path, init_args}`` node's arguments (a plain mapping as it is; null -> {})."""
    if not node:
        return {}
    return node.get("init_args", node) if isinstance(node, dict) else {}
