"""Smoke: the installed ``pebr-lit`` command is ``python cli.py`` (same subcommands, exit statuses)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import cli

ROOT = Path(__file__).resolve().parents[2]


def _script() -> Path:
    """The console script pip wrote beside the running interpreter; skips when there is none."""
    try:
        metadata.distribution("pebr-lit")
    except metadata.PackageNotFoundError:
        pytest.skip("pebr-lit is not installed in this environment: run `pip install -e .` (or `make venv`)")
    script = Path(sys.executable).parent / ("pebr-lit.exe" if sys.platform == "win32" else "pebr-lit")
    if not script.exists():
        pytest.skip(f"no {script}: pebr-lit was installed before it had a console script; rerun `pip install -e .`")
    return script


def _subcommands(help_text: str) -> list[str]:
    # argparse's usage line: "usage: <prog> [-c CONFIG] {fit,validate,test,predict} ..."
    found = re.search(r"\{([a-z_,]+)\}", help_text)
    assert found, help_text
    return found.group(1).split(",")


def test_entry_point_names_console_main():
    entry = [e for e in metadata.entry_points(group="console_scripts") if e.name == "pebr-lit"]
    if not entry:
        _script()  # skips with the reason
    assert entry[0].value == "cli:console_main"


def test_console_main_returns_a_zero_exit_status(monkeypatch):
    # sys.exit(console_main()) is what the installed script runs: a finished run must exit 0, and
    # sys.exit of the CLI object itself would print it and exit 1.
    calls = []
    monkeypatch.setattr(cli, "main", lambda *a, **k: calls.append(a) or object())
    assert cli.console_main() == 0 and calls == [()]


@pytest.mark.slow
def test_installed_command_matches_cli_py(tmp_path):
    script = _script()
    installed = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.startswith("usage: pebr-lit")
    direct = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert direct.returncode == 0, direct.stderr
    assert _subcommands(installed.stdout) == _subcommands(direct.stdout)
    assert set(_subcommands(installed.stdout)) >= {"fit", "validate", "test", "predict"}

    bad = subprocess.run(
        [str(script), "fit", "--no-such-option"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert bad.returncode == 2, bad.stderr  # argparse's usage error, as with `python cli.py`
