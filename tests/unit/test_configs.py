"""Every YAML under configs/ parses with the CLI (no model is loaded: parsing only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import PeBRCLI, main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no YAML"


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(p.parents[1])) for p in CONFIGS])
def test_config_parses(path, monkeypatch, capsys):
    # --print_config parses and validates the whole file against the signatures, then exits.
    # An overlay (a file naming "# overlay-of: <base>") is parsed on top of its base, as it is used.
    base = [line.split(":", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith("# overlay-of:")]
    configs = [arg for b in base for arg in ("--config", str(path.parents[2] / b))] + ["--config", str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *configs, "--print_config"], run=True)
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path" in printed and PeBRCLI.__name__
