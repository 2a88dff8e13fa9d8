"""Shared fixtures. Importing mtrec before TensorFlow routes tf.keras to Keras 2."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from shared_data import SHARED_DATA  # noqa: E402

import mtrec  # noqa: E402,F401  (the Keras switch, before TensorFlow)


@pytest.fixture
def shared_data() -> pathlib.Path:
    """The shared data folder; combine with ``shared_data.requires_shared_data``."""
    return SHARED_DATA


# ``make test`` runs ``pytest -n 2 --dist loadscope``: each module (its
# module-scoped fixtures, e.g. trained models and the cluster tests' baseline)
# runs on one worker. ``--dist loadgroup`` with ``xdist_group`` marks, used
# before, did not group here (pytest-xdist 3.8 on pytest 9: the tests of one
# group ran on both workers, so their fixtures were built twice).

#: Modules whose tests share no module-scoped fixture and are long: each test
#: is its own xdist scope, so ``--dist loadscope`` can spread them over both
#: workers (the notebooks: 188 + 50 + 41 + 36 s, which ran on one worker).
INDEPENDENT_MODULES = ("tests/test_notebooks.py",)


def _independent(nodeid: str) -> bool:
    """Whether the test ``nodeid`` is its own xdist scope
    (:data:`INDEPENDENT_MODULES`)."""
    return nodeid.split("::", 1)[0] in INDEPENDENT_MODULES


#: The controller's ``--dist`` mode, passed to each worker (xdist sets the
#: workers' own ``dist`` option to ``no``).
_DIST_KEY = "mtrec_dist"


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown without xdist
def pytest_configure_node(node):
    """xdist hook, in the controller: tells each worker the ``--dist`` mode."""
    node.workerinput[_DIST_KEY] = node.config.getoption("dist")


def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadscope``, the modules with the most ``slow`` tests
    are handed out first; the order within a module is kept (a module's
    scopes stay together, so its fixtures are built once per worker).

    Workers take scopes in collection order, and xdist's own reordering (by
    the number of tests) put the long scopes of few tests last: the
    notebooks (one test each, 20-90 s) and the clusters (6 tests, 380 s)
    then ran on one worker while the other sat idle. Longest first is the
    classic list-scheduling rule; the ``slow`` mark stands for the length.
    It changes when a test runs, never what it checks."""
    if getattr(config, "workerinput", {}).get(_DIST_KEY) != "loadscope":
        return  # only xdist workers collect for the scheduler
    modules: dict[str, list] = {}
    for item in items:
        key = item.nodeid if _independent(item.nodeid) else item.nodeid.split("::")[0]
        modules.setdefault(key, []).append(item)

    def length(tests: list) -> tuple[int, int]:
        slow = sum(test.get_closest_marker("slow") is not None for test in tests)
        return -slow, -len(tests)

    ordered = sorted(modules.values(), key=length)  # stable: ties keep their order
    items[:] = [item for tests in ordered for item in tests]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with the tests of :data:`INDEPENDENT_MODULES`
    scheduled one by one, in the order :func:`pytest_collection_modifyitems`
    gives; other modules stay whole (their fixtures are built once). Any
    other ``--dist`` mode is xdist's own.

    xdist has no public hook for a test's scope: this overrides
    ``LoadScopeScheduling._split_scope`` (pytest-xdist 3.5 to 3.8). Should a
    later version rename it, the notebooks run on one worker again: slower,
    never wrong."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # the collection order is the plan

    class _Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if _independent(nodeid):
                return nodeid
            return super()._split_scope(nodeid)

    return _Scheduler(config, log)


@pytest.fixture
def made_predictors(monkeypatch) -> list:
    """Every ``mtrec.training.Predictor`` made while the test runs, in order."""
    from mtrec.training import Predictor

    made, original = [], Predictor.__init__

    def recorded(self, model):
        original(self, model)
        made.append(self)

    monkeypatch.setattr(Predictor, "__init__", recorded)
    return made
