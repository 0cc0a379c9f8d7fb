"""Shipped configs as the CLI composes them: which ones are real-scale, their subcommand, the printed config.

``printed_config`` runs ``cli.py <subcommand> --config <path> --print_config`` in-process (overlays
expanded, every default filled in, nothing built) and returns the YAML it prints as a dict, so a
test can read e.g. ``cfg["trainer"]["precision"]`` or ``cfg["model"]["init_args"]["policy"]``.

Left out on purpose: any assertion (the tests that read the configs make their own).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ("fit", "validate", "test", "predict")
_RUN_LINE = re.compile(r"^# Run: .*?cli\.py\s+(\S+)")


def real_scale_configs() -> list[Path]:
    """Every launchable YAML under ``configs/qwen2_5_vl_*/`` (``_``-prefixed bases are partials, left out)."""
    return sorted(p for p in ROOT.glob("configs/qwen2_5_vl_*/**/*.yaml") if not p.name.startswith("_"))


def subcommand(path: Path) -> str:
    """The subcommand of the header's ``# Run: python cli.py <sub> ...`` line; ``fit`` when none names one."""
    for line in Path(path).read_text().splitlines():
        match = _RUN_LINE.match(line)
        if match and match.group(1) in SUBCOMMANDS:
            return match.group(1)
    return "fit"


def printed_config(path: Path, sub: str | None = None) -> dict[str, Any]:
    """The whole config ``cli.py`` resolves for ``path`` (under ``sub``, default: the header's subcommand)."""
    from cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([sub or subcommand(path), "--config", str(path), "--print_config"], run=True)
    printed = out.getvalue()
    if "class_path" not in printed:
        raise AssertionError(f"{path}: --print_config printed no config:\n{printed[-2000:]}")
    return yaml.safe_load(printed)


def init_args(node: Any) -> dict[str, Any]:
    """A ``{class_path, init_args}`` node's arguments (a plain mapping as it is; null -> {})."""
    if not node:
        return {}
    return node.get("init_args", node) if isinstance(node, dict) else {}
