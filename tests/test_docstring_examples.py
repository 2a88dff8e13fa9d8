"""Every docstring example in mtrec runs and prints what it says."""

import doctest
import importlib
import pathlib
import pkgutil

import numpy as np
import pytest
import tensorflow as tf

import mtrec


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(mtrec.__path__, prefix="mtrec."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            if ">>> " in pathlib.Path(spec.origin).read_text():
                names.append(info.name)
    return sorted(names)


# Its example serves a real export: tests/serving/test_server_example.py runs it.
RUN_ELSEWHERE = {"mtrec.serving.server"}
MODULES = [m for m in _modules_with_examples() if m not in RUN_ELSEWHERE]


def test_the_examples_are_found():
    assert "mtrec.layers.target_attention" in MODULES
    assert "mtrec.features.embedding" in MODULES
    assert RUN_ELSEWHERE <= set(_modules_with_examples())


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    tf.keras.utils.set_random_seed(0)
    globs = {**vars(mod), "tf": tf, "np": np, "mtrec": mtrec}
    result = doctest.testmod(
        mod,
        globs=globs,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} failing example(s) in {module}"
