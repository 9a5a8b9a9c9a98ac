"""Packaging: what a user gets from the wheel (``pip install napari-cnnjpeg``) and the sdist.

The wheel and sdist are built here, offline, with hatchling (the build backend, in the
test extras), and their contents and metadata checked against what the code reads at run
time; the napari manifest's commands are resolved; the declared dependencies are checked
against the package's imports and against the versions the code needs.
"""

from __future__ import annotations

import ast
import email
import hashlib
import json
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "napari_cnnjpeg"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
    reqs = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    out: dict[str, Requirement] = {}
    for line in reqs:
        r = Requirement(line)
        name = r.name.lower().replace("_", "-")
        if name in out:  # one specifier per distribution: a second line silently adds to the first
            raise AssertionError(f"{name} is listed twice in the dependencies")
        out[name] = r
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The wheel and sdist, built from this checkout with hatchling's own builders (no network)."""
    pytest.importorskip("hatchling", reason="hatchling (test extras) builds the wheel and sdist")
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("dist")
    wheel = next(iter(WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])))
    sdist = next(iter(SdistBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])))
    return {"wheel": Path(wheel), "sdist": Path(sdist)}


def _package_files() -> set[str]:
    """Files of the package in this checkout, as wheel paths (bytecode caches left out)."""
    return {
        "napari_cnnjpeg/" + p.relative_to(PKG).as_posix()
        for p in PKG.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_wheel_holds_every_package_file(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    missing = _package_files() - names
    assert not missing, f"package files left out of the wheel: {sorted(missing)}"
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}


def test_wheel_holds_the_data_read_at_run_time(built):
    """Weights (sha256 as zoo.json records), ONNX graphs (as index.json), manifest and sample data."""
    wheel = zipfile.ZipFile(built["wheel"])
    zoo = json.loads(wheel.read("napari_cnnjpeg/weights/zoo.json"))
    shipped = [e for e in zoo if e.get("weights")]
    assert any(e.get("default") for e in shipped), "the default model's weights are not in the wheel"
    for entry in shipped:
        data = wheel.read(f"napari_cnnjpeg/weights/{entry['weights']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["id"]
    graphs = json.loads(wheel.read("napari_cnnjpeg/graphs/index.json"))
    assert graphs
    for entry in graphs:
        assert hashlib.sha256(wheel.read(f"napari_cnnjpeg/graphs/{entry['file']}")).hexdigest() == entry["sha256"]
    manifest = yaml.safe_load(wheel.read("napari_cnnjpeg/napari.yaml"))
    assert manifest["name"] == PYPROJECT["project"]["name"]
    assert wheel.read("napari_cnnjpeg/_napari/samples/bacteria_cords.tif")[:4] in (b"II*\x00", b"MM\x00*")
    assert b"CC-BY" in wheel.read("napari_cnnjpeg/_napari/samples/ATTRIBUTION.md").upper().replace(b" ", b"-")


def test_wheel_metadata_and_entry_points(built):
    wheel = zipfile.ZipFile(built["wheel"])
    info = "napari_cnnjpeg-0.1.0.dist-info/"
    meta = email.message_from_bytes(wheel.read(info + "METADATA"))
    assert meta["Name"] == "napari-cnnjpeg"
    assert meta["Requires-Python"] == ">=3.11"
    assert "Framework :: napari" in meta.get_all("Classifier")
    assert (meta["License-Expression"] or meta["License"]) == "BSD-3-Clause"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert info + "licenses/LICENSE" in wheel.namelist() and b"BSD 3-Clause" in wheel.read(info + "licenses/LICENSE")
    requires = {Requirement(r).name.lower() for r in meta.get_all("Requires-Dist") if "extra ==" not in r}
    assert {"napari", "npe2", "torch", "scikit-image", "scipy"} <= requires
    # no Qt binding by default (napari's plugin guidelines): only in an extra
    assert not requires & {"pyqt5", "pyqt6", "pyside2", "pyside6"}
    entry_points = wheel.read(info + "entry_points.txt").decode()
    for line in ("cnnjpeg = napari_cnnjpeg.cli:main", "napari-cnnjpeg = napari_cnnjpeg:napari.yaml",
                 "cnnjpeg = napari_cnnjpeg.scale.numcodecs_codec:CnnJpeg",
                 "cnnjpeg = napari_cnnjpeg.scale.zarr3_codec:CnnJpegCodec"):
        assert line in entry_points


def test_sdist_builds_and_tests(built):
    """The sdist rebuilds the wheel and runs the tests: pyproject, README, sources, tests and the files they read."""
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {"pyproject.toml", "README.md", "LICENSE", "src/napari_cnnjpeg/napari.yaml", "docs/format.md",
              "scripts/pack_crops.py", "tests/conftest.py", "tests/helpers.py"}
    wanted |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py")}
    wanted |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("*.json")}
    wanted |= {"src/" + n for n in _package_files()}
    assert not wanted - names, sorted(wanted - names)
    assert not {n for n in names if n.startswith((".venv/", "runs/", "dist/", "build/")) or "__pycache__" in n}


def test_manifest_commands_resolve():
    """Every python_name of napari.yaml imports and is callable (npe2 validate does not import them)."""
    import importlib

    manifest = yaml.safe_load((PKG / "napari.yaml").read_text())
    commands = {c["id"]: c for c in manifest["contributions"]["commands"]}
    for command in commands.values():
        module, _, attr = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command["python_name"]
    contributions = manifest["contributions"]
    for kind in ("readers", "writers", "sample_data", "widgets"):
        for item in contributions[kind]:
            assert item["command"] in commands, (kind, item)
    assert contributions["readers"][0]["filename_patterns"] == ["*.cjpg"]
    assert contributions["writers"][0]["filename_extensions"] == [".cjpg"]


@pytest.mark.parametrize("module", ["napari_cnnjpeg", "napari_cnnjpeg.cli"])
def test_import_is_light(module):
    """``import napari_cnnjpeg`` (the plugin's first touch) and the CLI (``cnnjpeg --help``: it took 1.3 s
    when the demo's metrics imported scikit-image's, and with them scipy.stats) load no torch, napari, Qt,
    scikit-image or scipy."""
    heavy = ["torch", "napari", "qtpy", "PyQt6", "PyQt5", "PySide6", "skimage", "scipy", "onnxruntime", "dask",
             "zarr", "matplotlib", "distributed"]
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def _imported_distributions() -> dict[str, set[str]]:
    """Third-party top-level modules the package imports, with the files importing each."""
    found: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "napari_cnnjpeg":
                    found.setdefault(top, set()).add(path.relative_to(PKG).as_posix())
    return found


#: Modules used only where an optional extra is installed (the module imports them lazily).
OPTIONAL = {"pyjpegli": "train"}
#: Import names of distributions whose name differs.
DIST = {"PIL": "pillow", "skimage": "scikit-image", "ome_zarr": "ome-zarr", "yaml": "pyyaml"}


def test_imports_are_declared_dependencies():
    """A module the package imports is a declared dependency, not one that merely comes along with another."""
    declared = set(_requirements())
    declared |= {extra for r in _requirements().values() for extra in r.extras}  # dask[distributed]
    undeclared = {}
    for module, files in _imported_distributions().items():
        if module in OPTIONAL:
            assert module in {r for r in _requirements(OPTIONAL[module])}, module
            continue
        if DIST.get(module, module).lower() not in declared:
            undeclared[module] = sorted(files)
    assert not undeclared, f"imported but not declared in pyproject's dependencies: {undeclared}"


@pytest.mark.parametrize(("dist", "too_old", "first_good", "why"), [
    ("napari", "0.5.0", "0.5.1", "napari 0.5.0's add_image takes axis_labels/units for channels: "
     "TypeError opening any .cjpg saved from a layer"),
    ("ome-zarr", "0.11.1", "0.12.0", "ome-zarr < 0.12 needs zarr < 3 and has no FormatV05 (cnnjpeg convert)"),
    ("numcodecs", "0.13.1", "0.14.0", "zarr 3 needs numcodecs >= 0.14"),
    ("zarr", "2.18.3", "3.0.0", "the codec is a zarr 3 codec"),
])
def test_dependency_lower_bounds(dist, too_old, first_good, why):
    spec = _requirements()[dist].specifier
    assert not spec.contains(too_old), why
    assert spec.contains(first_good), f"{dist} {first_good} works and should be allowed"


def test_declared_lower_bounds_hold_here():
    """The environment the tests run in satisfies the declared dependencies (no stale pins)."""
    from importlib.metadata import PackageNotFoundError, version

    for name, req in _requirements().items():
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is a dependency but is not installed")
        assert req.specifier.contains(installed, prereleases=True), (name, installed, str(req.specifier))
