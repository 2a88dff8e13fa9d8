"""AliExpress (MTReclib's processed CSV): click and conversion, validated, to Parquet.

The AliExpress Searching System data set (Tianchi 74690, one file pair per
country: NL, ES, FR, US, RU) is used in its MTReclib form
(``easezyc/Multitask-Recommendation-Library``, ``data/preprocess.py``): a
header and 82 columns, ``search_id``, ``categorical_1..16`` (label-encoded
ids), ``numerical_1..63`` (already scaled to about [0, 1]), ``click``,
``conversion`` (a conversion implies a click). torch-rechub and FuxiCTR
(``tiny_mtl``) ship samples of the same form.

:func:`prepare_aliexpress` keeps every column and name; ``search_id`` is not a
feature (MTReclib drops it) but stays, e.g. for a group AUC per search
(``eval.gauc_group: search_id``). Since names are kept, the shipped
``aliexpress`` config also trains on the MTReclib CSV files themselves
(without the checks below, beyond mtrec's own reader).

Example:

>>> specs = aliexpress_features()
>>> len(specs), specs[0]["name"], specs[16]["name"]
(79, 'categorical_1', 'numerical_1')
"""

import logging
import os
import pathlib
from collections.abc import Sequence

import pandas as pd

from mtrec.data.loaders.delimited import DEFAULT_CHUNK_ROWS
from mtrec.data.loaders.delimited import TextChunk
from mtrec.data.loaders.delimited import parse_binary
from mtrec.data.loaders.delimited import parse_floats
from mtrec.data.loaders.delimited import parse_ints
from mtrec.data.loaders.delimited import read_chunks
from mtrec.data.loaders.label_rule import LabelRule
from mtrec.data.loaders.parquet_sink import ParquetSink
from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

ALIEXPRESS_CATEGORICAL: tuple[str, ...] = tuple(
    f"categorical_{i}" for i in range(1, 17)
)
ALIEXPRESS_NUMERICAL: tuple[str, ...] = tuple(f"numerical_{i}" for i in range(1, 64))
ALIEXPRESS_LABELS: tuple[str, str] = ("click", "conversion")
#: The header of MTReclib's files, in order.
ALIEXPRESS_COLUMNS: tuple[str, ...] = (
    "search_id",
    *ALIEXPRESS_CATEGORICAL,
    *ALIEXPRESS_NUMERICAL,
    *ALIEXPRESS_LABELS,
)


def aliexpress_features(embedding_dim: int = 8) -> list[dict]:
    """mtrec feature specs of the AliExpress columns (16 ids, 63 numbers).

    Args:
      embedding_dim: width of every id embedding. Default 8 (MTReclib: 128
        for its larger models; the largest id field has a few hundred values).

    Returns:
      Dicts for ``mtrec.features.FeatureSet.from_dicts``: int64 categorical
      ids with vocabularies fitted on the train split, and the numerical
      columns as they are (``normalization: none``: already scaled).
    """
    specs: list[dict] = [
        {
            "name": name,
            "kind": "categorical",
            "dtype": "int64",
            "embedding_dim": embedding_dim,
        }
        for name in ALIEXPRESS_CATEGORICAL
    ]
    specs += [
        {"name": name, "kind": "dense", "normalization": "none"}
        for name in ALIEXPRESS_NUMERICAL
    ]
    return specs


def prepare_aliexpress(
    src: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    on_conversion_without_click: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[pathlib.Path]:
    """Validates MTReclib AliExpress files, writes ``<out_dir>/<name>.parquet``.

    Each file is streamed in chunks of ``chunk_rows`` lines. Its header must
    be :data:`ALIEXPRESS_COLUMNS`; ``search_id`` and the ids must be
    integers, the numerical columns finite numbers, the labels 0 or 1.

    Args:
      src: one file or several (e.g. ``train.csv`` and ``test.csv``).
      out_dir: directory of the Parquet files (created if missing).
      on_conversion_without_click: ``"error"`` (default): raise, with the
        count and the first line, after reading the file; ``"drop"``: drop
        such rows and log the count and the first line.
      chunk_rows: lines per chunk (memory bound).

    Returns:
      The Parquet paths, in the order of ``src`` (``train.csv`` ->
      ``train.parquet``).

    Raises:
      FileNotFoundError: a missing file.
      DataError: a malformed file, naming the file, the line and the column.
    """
    sources = [src] if isinstance(src, (str, os.PathLike)) else list(src)
    outputs = []
    for path in map(pathlib.Path, sources):
        out = pathlib.Path(out_dir) / f"{path.name.split('.')[0]}.parquet"
        rule = LabelRule("conversion", "click", on_conversion_without_click)
        chunks = read_chunks(
            path, header=True, columns=ALIEXPRESS_COLUMNS, chunk_rows=chunk_rows
        )
        with ParquetSink(out) as sink:
            for chunk in chunks:
                sink.write(_convert(chunk, rule))
            rule.finish(path)
            if not sink.rows:
                raise DataError(f"{path}: the file has no rows")
        logger.info("%s -> %s (%d rows)", path, out, sink.rows)
        outputs.append(out)
    return outputs


def _convert(chunk: TextChunk, rule: LabelRule) -> pd.DataFrame:
    columns = {"search_id": parse_ints(chunk, "search_id")}
    columns.update({name: parse_ints(chunk, name) for name in ALIEXPRESS_CATEGORICAL})
    columns.update({name: parse_floats(chunk, name) for name in ALIEXPRESS_NUMERICAL})
    columns.update({name: parse_binary(chunk, name) for name in ALIEXPRESS_LABELS})
    keep = rule.check(columns["click"], columns["conversion"], chunk.lines)
    return pd.DataFrame(columns)[keep]
