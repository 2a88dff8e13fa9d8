"""Shared fixtures. Importing mtrec first routes tf.keras to Keras 2."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import mtrec  # noqa: E402,F401  (the Keras switch, before TensorFlow)

#: The real public data beside the checkout (../shared/data), absent on some machines.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
    """The shared data folder; combine with ``@requires_shared_data``."""
    return SHARED_DATA


#: Mark for tests that read ../shared/data.
requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real sample data not found at {SHARED_DATA}"
)

#: The UCI census-income file (the MMoE paper's real data) in ../shared/data.
CENSUS_FILE = SHARED_DATA / "census-income" / "census-income.test.gz"

#: Mark for tests that read :data:`CENSUS_FILE`, saying where it looked.
requires_census_file = pytest.mark.skipif(
    not CENSUS_FILE.is_file(), reason=f"census-income file not found at {CENSUS_FILE}"
)


# ``make test`` runs ``pytest -n 2 --dist loadscope``: each module (its
# module-scoped fixtures, e.g. trained models and the cluster tests' baseline)
# runs on one worker. ``--dist loadgroup`` with ``xdist_group`` marks, used
# before, did not group here (pytest-xdist 3.8 on pytest 9: the tests of one
# group ran on both workers, so their fixtures were built twice).

#: Modules whose tests share no module-scoped fixture and are long: each test
#: is its own xdist scope, so ``--dist loadscope`` can spread them over both
#: workers (the notebooks: 188 + 50 + 41 + 36 s, which ran on one worker).
INDEPENDENT_MODULES = ("tests/test_notebooks.py",)


#: The longest modules, longest first (seconds of their tests in a fresh-clone
#: run at ``c7effcc``, 2 workers, AVX-512 core): scheduled before the rest.
#: xdist orders scopes by their number of tests, which put the cluster tests
#: (8 tests, 248 s) near the end, alone on one worker while the other idled.
LONG_MODULES = (
    "tests/training/test_cluster.py",  # 248 s
    "tests/test_notebooks.py",  # 147 s, one scope per notebook
    "tests/affinity/test_truth.py",  # 95 s
    "tests/training/test_pipeline.py",  # 60 s
    "tests/models/test_precision.py",  # 52 s
    "tests/training/test_imports.py",  # 51 s
    "tests/training/test_native_training.py",  # 48 s
    "tests/serving/test_manager.py",  # 39 s
    "tests/affinity/test_gain.py",  # 38 s
)


def _long_first(scopes: list[str]) -> list[str]:
    """``scopes`` with those of :data:`LONG_MODULES` first, in its order;
    the others keep their order after them."""
    rank = {module: i for i, module in enumerate(LONG_MODULES)}
    last = len(LONG_MODULES)
    return sorted(scopes, key=lambda scope: rank.get(scope.split("::", 1)[0], last))


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with the tests of :data:`INDEPENDENT_MODULES`
    scheduled one by one, and :data:`LONG_MODULES` handed out first; other
    modules stay whole (their fixtures are built once). Any other ``--dist``
    mode is xdist's own.

    xdist has no public hook for a test's scope or the order of scopes: this
    overrides ``LoadScopeScheduling._split_scope`` and ``_assign_work_unit``
    (pytest-xdist 3.5 to 3.8). Should a later version rename them, the
    notebooks run on one worker again and the scopes in xdist's order:
    slower, never wrong."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _Scheduler(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0] in INDEPENDENT_MODULES:
                return nodeid
            return super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the queue is complete at the first hand-out
                for scope in reversed(_long_first(list(self.workqueue))):
                    self.workqueue.move_to_end(scope, last=False)
                self.ordered = True
            super()._assign_work_unit(node)

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
