"""A shipped config as the CLI composes it: its bases loaded first, every default filled in, nothing built."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import yaml

from cli import main

_RUN = re.compile(r"^# Run: python cli\.py (fit|validate|test|predict)\b", re.MULTILINE)


def subcommand(path: str | Path) -> str:
    """The subcommand the file's ``# Run: python cli.py <sub>`` header names; ``fit`` when it names none."""
    found = _RUN.search(Path(path).read_text())
    return found.group(1) if found else "fit"


def printed_config(path: str | Path) -> dict[str, Any]:
    """``python cli.py <sub> --config <path> --print_config`` parsed back into a dict."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([subcommand(path), "--config", str(path), "--print_config"], run=True)
    config = yaml.safe_load(out.getvalue())
    if not isinstance(config, dict):
        raise AssertionError(f"{path}: --print_config printed no config:\n{out.getvalue()[-2000:]}")
    return config
