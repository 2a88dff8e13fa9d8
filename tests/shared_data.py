"""Where the real public data beside the checkout is, and skip marks for it.

A module of its own, not ``conftest``: test modules import these names, and
``from shared_data import ...`` resolves to whichever conftest pytest loaded last
(``tests/serving/conftest.py`` when a run names a serving test after these).
"""

import pathlib

import pytest

#: The real public data beside the checkout (../shared/data), absent on some machines.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"

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
