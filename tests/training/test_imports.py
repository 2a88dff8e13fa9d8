"""No import cycles: every subpackage imports alone; export does not need training."""

import subprocess
import sys

import pytest

SUBPACKAGES = [
    "mtrec.data",
    "mtrec.export",
    "mtrec.features",
    "mtrec.layers",
    "mtrec.metrics",
    "mtrec.models",
    "mtrec.serving",
    "mtrec.training",
    "mtrec.weighting",
]


def _loaded_after(module: str) -> list[str]:
    """The mtrec modules loaded by importing ``module`` in a fresh interpreter."""
    code = (
        f"import sys, {module}; "
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('mtrec'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


@pytest.mark.slow
@pytest.mark.parametrize("module", SUBPACKAGES)
def test_each_subpackage_imports_in_a_fresh_interpreter(module):
    assert module in _loaded_after(module)


def test_export_does_not_import_training():
    loaded = _loaded_after("mtrec.export")
    assert "mtrec.export.saved_model" in loaded
    assert [m for m in loaded if m.startswith("mtrec.training")] == []
