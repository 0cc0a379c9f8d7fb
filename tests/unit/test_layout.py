"""The package layout's two rules: every sub-package says in one line what it owns, and the core never imports
the embedded demo (``pebr_lit/demo``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pebr_lit"
CORE_FILES = sorted(p for p in PACKAGE.rglob("*.py") if "demo" not in p.relative_to(PACKAGE).parts)
PACKAGES = sorted(p.parent for p in PACKAGE.rglob("__init__.py"))


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names that the code ``source`` of module ``module`` (dotted) imports, lazy imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[: -node.level] if node.level else []  # relative: from the file's package
            target = ".".join([*base, node.module] if node.module else base)
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def _demo_imports(source: str, module: str) -> list[str]:
    return sorted(m for m in imported_modules(source, module) if m == "pebr_lit.demo" or m.startswith("pebr_lit.demo."))


def test_the_scan_sees_lazy_relative_and_from_package_imports():
    assert _demo_imports("def f():\n    from pebr_lit.demo.tiny import build_assets\n", "pebr_lit.eval.x")
    assert _demo_imports("from ..demo import tiny\n", "pebr_lit.eval.x") == ["pebr_lit.demo", "pebr_lit.demo.tiny"]
    assert _demo_imports("from pebr_lit import demo\n", "pebr_lit.eval.x") == ["pebr_lit.demo"]
    assert not _demo_imports("from pebr_lit.data import records\nimport demo_tools\n", "pebr_lit.eval.x")


@pytest.mark.parametrize("path", CORE_FILES, ids=[str(p.relative_to(PACKAGE)) for p in CORE_FILES])
def test_core_module_does_not_import_the_demo(path):
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    demo = _demo_imports(path.read_text(), module)
    assert not demo, f"{path.relative_to(PACKAGE)} imports {demo}; move what it needs out of pebr_lit/demo"


@pytest.mark.parametrize("package", PACKAGES, ids=[str(p.relative_to(PACKAGE.parent)) for p in PACKAGES])
def test_every_package_docstring_is_one_line(package):
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    assert doc and "\n" not in doc.strip(), f"{package}/__init__.py needs a one-line docstring: what it owns"
