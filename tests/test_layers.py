"""The package's folders are layers: each module imports only from its own layer and those below."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_cnnjpeg

PACKAGE = Path(napari_cnnjpeg.__file__).parent
#: Lowest first. ``__init__`` (the public API) and ``cli`` may import anything.
LAYERS = ["errors", "format", "nn", "codec", "eval", "training", "scale", "_napari", "cli"]


def _layer(module: str) -> str:
    """The layer of a dotted module name inside the package (``napari_cnnjpeg.format.jpeg``: format)."""
    parts = module.split(".")[1:]
    return parts[0] if parts else "__init__"


def _imports(path: Path) -> set[str]:
    """Every module of the package that this file imports, at any depth of the code."""
    parts = ["napari_cnnjpeg", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("napari_cnnjpeg"):
                continue
            found.add(target)
            if not node.module:  # from . import a, b: each name may be a module
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("napari_cnnjpeg"))
    return found


def test_every_module_imports_only_downward():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer(".".join(["napari_cnnjpeg", *path.relative_to(PACKAGE).with_suffix("").parts]))
        if own in ("__init__", "cli"):
            continue
        assert own in LAYERS, f"{path.name} is in no layer"
        for target in _imports(path):
            layer = _layer(target)
            if layer in LAYERS and LAYERS.index(layer) > LAYERS.index(own):
                upward.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not upward, upward


def test_format_imports_nothing_but_errors():
    for path in (PACKAGE / "format").glob("*.py"):
        for target in _imports(path):
            assert _layer(target) in ("errors", "format"), f"{path.name} imports {target}"


def test_imports_are_resolved_from_each_file():
    found = _imports(PACKAGE / "nn" / "models.py")
    assert {"napari_cnnjpeg.format.jpeg", "napari_cnnjpeg.errors", "napari_cnnjpeg.nn.inference"} <= found
    assert "napari_cnnjpeg.codec" in _imports(PACKAGE / "eval" / "bench.py")
