"""One small ESMM run, trained and exported once per session, and a server on it.

The run goes through ``train()``, so its export is the one users get: both
signatures, the config in ``assets/`` and warmup requests from its validation
rows.
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from serving_helpers import FEATURES_FILE
from serving_helpers import MAX_BATCH_SIZE
from serving_helpers import MAX_REQUEST_BYTES
from serving_helpers import MODEL

from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.features import FeatureSet
from mtrec.training import load_config
from mtrec.training import train


@pytest.fixture(scope="session")
def click_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving_data") / "log.csv"
    write_table(generate_click_log(4_000, seed=11, num_users=400, num_items=400), path)
    return path


@pytest.fixture(scope="session")
def run(tmp_path_factory, click_log):
    """``train()`` of a small ESMM, exported to ``<tmp>/exports/1``."""
    tmp = tmp_path_factory.mktemp("serving_run")
    config = {
        "name": "serving",
        "seed": 3,
        "runs_dir": str(tmp / "runs"),
        "features": str(FEATURES_FILE),
        "tasks": [
            {"name": "ctr", "label": "click"},
            {"name": "cvr", "label": "conversion", "condition": "click"},
        ],
        "data": {
            "train": str(click_log),
            "eval_fraction": 0.2,
            "label_requires": {"conversion": "click"},
        },
        "model": {"backbone_args": {"units": [16]}, "tower_units": [8]},
        "train": {"batch_size": 512, "epochs": 1, "progress": False},
        "export": {"base": str(tmp / "exports")},
    }
    return train(load_config(config))


@pytest.fixture(scope="session")
def rows(click_log) -> dict[str, np.ndarray]:
    """40 raw rows of the click log, by feature (strings as ``str``)."""
    frame = pd.read_csv(click_log, nrows=40, keep_default_na=False)
    feature_set = FeatureSet.from_yaml(FEATURES_FILE)
    out = {}
    for name in feature_set.names:
        dtype = feature_set.input_dtype(name)
        if dtype == tf.string:
            out[name] = np.array([str(v) for v in frame[name]], dtype=object)
        else:
            out[name] = frame[name].to_numpy(dtype.as_numpy_dtype)
    return out


@pytest.fixture(scope="session")
def expected(run, rows) -> dict[str, np.ndarray]:
    """What the in-process Keras model returns for ``rows``: ``{output: (40,)}``."""
    tensors = {
        name: tf.constant(values, dtype=run.feature_set.input_dtype(name))
        for name, values in rows.items()
    }
    return {name: v.numpy()[:, 0] for name, v in run.model(tensors).items()}


@pytest.fixture(scope="session")
def server(run):
    """The local server on the run's export base, ephemeral ports on 127.0.0.1."""
    from mtrec.serving import ModelManager
    from mtrec.serving import ModelServer
    from mtrec.serving import ServerOptions

    manager = ModelManager(MODEL, run.export_path.parent, poll_seconds=0)
    options = ServerOptions(
        rest_port=0,
        grpc_port=0,
        max_batch_size=MAX_BATCH_SIZE,
        max_request_bytes=MAX_REQUEST_BYTES,
        grpc_workers=4,
    )
    with ModelServer(manager, options) as started:
        yield started
