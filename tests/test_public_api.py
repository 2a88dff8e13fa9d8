"""The public API: every registered layer and backbone is exported from mtrec,
every package declares its exports, and benchmarks and notebooks use only them."""

import ast
import importlib
import json
import pathlib

import pytest
import tensorflow as tf

import mtrec
from mtrec.training.builders import BACKBONES


def test_every_registered_mtrec_class_is_exported_from_mtrec():
    registered = {
        key.split(">", 1)[1]
        for key in tf.keras.utils.get_custom_objects()
        if key.startswith("mtrec>")
    }
    weighting = {cls.__name__ for cls in mtrec.weighting.WEIGHTINGS.values()}
    layers = registered - weighting
    assert {"MMoE", "OMoE", "CGC", "PLE", "SharedBottom", "FeatureEmbedding"} <= layers
    missing = sorted(name for name in layers if not hasattr(mtrec, name))
    assert not missing, f"registered but not exported from mtrec: {missing}"


def test_every_backbone_is_exported_and_registered():
    for name, cls in BACKBONES.items():
        assert getattr(mtrec, cls.__name__) is cls, name
        assert tf.keras.utils.get_registered_name(cls) == f"mtrec>{cls.__name__}"


# --- the declared surface: benchmarks and notebooks use nothing else ---------

PUBLIC_MODULES = (
    "mtrec",
    "mtrec.affinity",
    "mtrec.data",
    "mtrec.export",
    "mtrec.features",
    "mtrec.layers",
    "mtrec.metrics",
    "mtrec.models",
    "mtrec.plots",
    "mtrec.serving",
    "mtrec.training",
    "mtrec.weighting",
)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _code_of(path: pathlib.Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines += "".join(cell["source"]).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _mtrec_imports(path: pathlib.Path):
    """``(module, name)`` of every ``from mtrec... import name`` and
    ``(module, None)`` of every ``import mtrec...`` in a file."""
    for node in ast.walk(ast.parse(_code_of(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtrec"):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mtrec"):
                    yield alias.name, None


def _surface_files():
    return sorted(ROOT.glob("benchmarks/*.py")) + sorted(ROOT.glob("notebooks/*.ipynb"))


def test_every_public_module_declares_what_it_exports():
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        exported = module.__all__
        assert len(set(exported)) == len(exported), name
        missing = [n for n in exported if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("path", _surface_files(), ids=lambda p: p.name)
def test_benchmarks_and_notebooks_use_only_the_public_api(path):
    outside = []
    for module, name in _mtrec_imports(path):
        if module not in PUBLIC_MODULES:
            outside.append(f"{module}.{name}" if name else module)
        elif name is not None and name not in importlib.import_module(module).__all__:
            if f"{module}.{name}" not in PUBLIC_MODULES:  # a subpackage
                outside.append(f"{module}.{name}")
    assert not outside, f"{path.name} imports outside the public API: {outside}"


def test_no_private_name_is_imported_from_mtrec_anywhere():
    files = _surface_files() + sorted(ROOT.glob("tests/**/*.py"))
    private = [
        f"{path.relative_to(ROOT)}: {module}.{name}"
        for path in files
        for module, name in _mtrec_imports(path)
        if name is not None and name.startswith("_") and name != "__version__"
    ]
    assert not private, private
