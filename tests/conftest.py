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


def pytest_collection_modifyitems(config, items):
    """Group tests for ``pytest -n 2 --dist loadgroup`` (the README's test command).

    A module's tests share its module-scoped fixtures (trained models), so each
    module runs on one worker; the serving tests share session fixtures (one
    trained export), so the whole serving folder is one group.
    """
    serving = pathlib.Path(__file__).parent / "serving"
    for item in items:
        path = pathlib.Path(str(item.fspath))
        group = "serving" if serving in path.parents else str(path)
        item.add_marker(pytest.mark.xdist_group(group))
