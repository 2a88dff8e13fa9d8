"""Constants and payload builders shared by the serving tests."""

import pathlib

import numpy as np

import mtrec

MODEL = "esmm_small"
#: The server's limits in tests (small, so the limit tests are cheap).
MAX_BATCH_SIZE = 64
MAX_REQUEST_BYTES = 64 * 1024

#: The features of the shipped ESMM config (what serving/examples/ send).
FEATURES_FILE = (
    pathlib.Path(mtrec.__file__).parent / "configs" / "features" / "click_log.yaml"
)


def json_rows(rows: dict[str, np.ndarray]) -> list[dict]:
    """``rows`` as TF Serving ``instances``."""
    columns = json_columns(rows)
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def json_columns(rows: dict[str, np.ndarray]) -> dict[str, list]:
    """``rows`` as TF Serving columnar ``inputs``."""
    return {
        name: [str(v) for v in values] if values.dtype == object else values.tolist()
        for name, values in rows.items()
    }
