"""The DeepCTR comparison's data: census-income encoded once to arrays both
libraries read.

:func:`prepare_data` (orchestrator, needs pandas and mtrec, imported inside)
writes ``arrays.npz`` and ``meta.json``; :func:`load_arrays` and
:func:`split_arrays` read them back (standard library and numpy only: the
worker runs them in DeepCTR's virtualenv too).
"""

import json
import pathlib
from collections.abc import Sequence

import numpy as np
from deepctr_settings import CENSUS_FILE
from deepctr_settings import LABELS
from deepctr_settings import SEED
from deepctr_settings import SPLIT_DIR
from deepctr_settings import SPLIT_SEED


def prepare_data(out_dir: pathlib.Path, split_dir: pathlib.Path = SPLIT_DIR) -> dict:
    """Encodes the census-income split once; writes ``arrays.npz`` and ``meta.json``.

    ``arrays.npz`` holds ``{split}.{column}`` for the train and test splits:
    int32 ids for categorical columns, float32 z-scores for dense ones, int8
    labels (:data:`LABELS`). Returns the meta dict (features with their
    vocabulary sizes, rows, label rates).
    """
    import pandas as pd

    from mtrec.data import census_features
    from mtrec.data import prepare_census_income

    paths = prepare_census_income(CENSUS_FILE, split_dir, group=1, seed=SPLIT_SEED)
    train = pd.read_parquet(paths["train"])
    test = pd.read_parquet(paths["test"])
    train = train.iloc[np.random.default_rng(SEED).permutation(len(train))]
    arrays, features = {}, []
    for spec in census_features(numeric="value"):
        column = spec["name"]
        if spec["kind"] == "dense":
            values = {}
            for split, frame in (("train", train), ("test", test)):
                x = frame[column].to_numpy(np.float64)
                if spec["log1p"]:
                    x = np.sign(x) * np.log1p(np.abs(x))
                values[split] = x
            mean, std = values["train"].mean(), values["train"].std()
            std = std if std > 0 else 1.0
            for split, x in values.items():
                arrays[f"{split}.{column}"] = ((x - mean) / std).astype(np.float32)
            features.append({"name": column, "kind": "dense"})
        else:
            counts = train[column].value_counts(sort=False)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ids = {value: i + 1 for i, (value, _) in enumerate(ranked)}
            for split, frame in (("train", train), ("test", test)):
                encoded = frame[column].map(ids).fillna(0)
                arrays[f"{split}.{column}"] = encoded.to_numpy(np.int32)
            features.append(
                {"name": column, "kind": "categorical", "vocabulary_size": len(ids) + 1}
            )
    for split, frame in (("train", train), ("test", test)):
        income = frame["income_50k"].to_numpy(np.int8)
        never = frame["never_married"].to_numpy(np.int8)
        arrays[f"{split}.income_50k"] = income
        arrays[f"{split}.never_married"] = never
        arrays[f"{split}.click"] = (1 - never).astype(np.int8)
        arrays[f"{split}.conversion"] = (income * (1 - never)).astype(np.int8)
    meta = {
        "features": features,
        "rows": {"train": len(train), "test": len(test)},
        "label_rates": {
            split: {
                label: round(float(arrays[f"{split}.{label}"].mean()), 4)
                for label in LABELS
            }
            for split in ("train", "test")
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "arrays.npz", **arrays)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_arrays(data_dir: pathlib.Path, rows: int | None) -> tuple[dict, dict]:
    """``(meta, arrays)`` from :func:`prepare_data`; ``rows`` cuts the train split."""
    meta = json.loads((data_dir / "meta.json").read_text())
    with np.load(data_dir / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    if rows is not None:
        arrays = {
            k: v[:rows] if k.startswith("train.") else v for k, v in arrays.items()
        }
    return meta, arrays


def split_arrays(arrays: dict, split: str, names: Sequence[str]) -> dict:
    """``{name: arrays["<split>.<name>"]}`` for ``names``."""
    return {name: arrays[f"{split}.{name}"] for name in names}
