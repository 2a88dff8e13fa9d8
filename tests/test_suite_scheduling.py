"""The suite's own xdist scheduling (``tests/conftest.py``): the modules it
names exist, and the longest are handed out first."""

import pathlib

from conftest import INDEPENDENT_MODULES
from conftest import LONG_MODULES
from conftest import long_first

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_named_module_exists():
    # A renamed module would silently fall back to xdist's order.
    for module in (*LONG_MODULES, *INDEPENDENT_MODULES):
        assert (ROOT / module).is_file(), module


def test_long_modules_come_first_in_their_order_and_the_rest_keep_theirs():
    scopes = [
        "tests/data/test_b.py",
        "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[01]",
        "tests/data/test_a.py",
        "tests/affinity/test_truth.py",
        "tests/training/test_cluster.py",
    ]
    assert long_first(scopes) == [
        "tests/training/test_cluster.py",
        "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[01]",
        "tests/affinity/test_truth.py",
        "tests/data/test_b.py",
        "tests/data/test_a.py",
    ]
