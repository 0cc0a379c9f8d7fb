"""Every command a message or a doc names exists: ``python -m pebr_lit.<module>`` runs, ``make <target>`` is a target.

Messages that tell a user what to do must never name a command that does not exist (``make assets`` once did).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*ROOT.glob("pebr_lit/**/*.py"), *ROOT.glob("callbacks/*.py"), ROOT / "cli.py", *ROOT.glob("docs/*.md")]
MODULE = re.compile(r"python -m (pebr_lit(?:\.[A-Za-z_]\w*)*)")
MAKE = re.compile(r"`make ([a-z][\w-]*)")


def _named(pattern: re.Pattern[str]) -> dict[str, str]:
    """Each name ``pattern`` captures in the sources, with the first place it appears."""
    found: dict[str, str] = {}
    for path in [*SOURCES, ROOT / "README.md"]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for name in pattern.findall(line):
                found.setdefault(name, f"{path.relative_to(ROOT)}:{n}")
    return found


def _runnable(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    if spec.submodule_search_locations:  # a package: python -m runs its __main__.py
        return (Path(spec.origin).parent / "__main__.py").is_file()
    return 'if __name__ == "__main__":' in Path(spec.origin).read_text()


def test_every_named_module_runs():
    named = _named(MODULE)
    assert "pebr_lit.demo.tiny" in named  # the scan finds what the messages name
    assert not _runnable("pebr_lit.demo.assets")  # and the check can fail
    missing = {m: where for m, where in named.items() if m != "pebr_lit" and not _runnable(m)}
    assert not missing, missing


def test_every_named_make_target_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    named = _named(MAKE)
    assert "demo" in named and "assets" not in targets
    missing = {t: where for t, where in named.items() if t not in targets}
    assert not missing, missing
