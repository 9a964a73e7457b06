"""Layers that hold (issue 18, item 5): every import inside ``robusthide/`` (module level and inside
functions) follows the order of :mod:`robusthide._layers`; only ``cli/`` parses arguments and prints."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from robusthide._layers import LAYERS, allowed, layer_of

PKG = Path(__file__).parent.parent / "robusthide"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every robusthide import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "robusthide"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "robusthide":
                continue
            if mod == "robusthide":  # from robusthide import X: X may be a subpackage
                out += [(node.lineno, f"robusthide.{a.name}" if layer_of(f"robusthide.{a.name}") is not None
                         else "robusthide") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return out


FILES = sorted(PKG.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "_layers")}
    known = {name for layer in LAYERS for name in layer}
    assert packages - known == set(), "add the new package to robusthide/_layers.py LAYERS"


def test_no_import_goes_up_a_layer():
    bad = [f"{f.relative_to(PKG.parent)}:{line}: {_module_name(f)} -> {mod}"
           for f in FILES for line, mod in _imports(f) if not allowed(_module_name(f), mod)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_arrows_inside_functions(tmp_path):
    assert not allowed("robusthide.watermark.files", "robusthide.cli.main")
    assert not allowed("robusthide.nets.lean", "robusthide.training.config")
    assert not allowed("robusthide.codecs.image", "robusthide.metrics.image")
    assert allowed("robusthide.cli.main", "robusthide.codecs")
    assert allowed("robusthide.service.app", "robusthide.cli.args")
    assert allowed("robusthide.imagehiding.train", "robusthide.training.config")


LIBRARY = [f for f in FILES if layer_of(_module_name(f)) not in (None, len(LAYERS) - 1)]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PKG)))
def test_library_modules_do_not_parse_arguments_or_print(path):
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if "argparse" in names:
                found.append(f"{node.lineno}: imports argparse")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"{node.lineno}: print()")
        elif isinstance(node, ast.FunctionDef) and node.name == "main" and node.col_offset == 0:
            found.append(f"{node.lineno}: def main")
    assert not found, "\n".join(found)
