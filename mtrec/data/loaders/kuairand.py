"""KuaiRand (Kuaishou's video log): click, long view and other behaviours, to Parquet.

KuaiRand (Gao et al., CIKM 2022) logs short-video impressions with several
feedback signals: ``is_click``, ``long_view``, ``is_like``, ``is_follow``,
``is_comment``, ``is_forward``, ``is_hate``, ``is_profile_enter``, and the
watch time ``play_time_ms`` of a video of ``duration_ms``. Its logs
(``log_standard_*.csv``) join on ``user_id`` with ``user_features*.csv``
and on ``video_id`` with ``video_features_basic*.csv``; this loader reads one
joined table with a header, in any column order, as in the Scenario-Wise-Rec
sample (42 columns): the :data:`KUAIRAND_REQUIRED` columns, plus any of the
behaviour columns of :data:`KUAIRAND_BEHAVIOURS`. Unjoined KuaiRand files
are not read; join them first (e.g. ``pandas.merge``), column names unchanged.

Labels written: ``click`` (``is_click``), ``long_view`` (the file's column,
or, when absent, derived: ``play_time_ms >= min(duration_ms, 18 s)``, the
whole video or 18 s, our reading of KuaiRand's definition, not checked against
its published column; a zero, unknown, duration needs 18 s), and each behaviour
present (``like``, ``follow``, ...). Categorical columns are written as
strings (``"3.0"`` becomes ``"3"``, so float-written ids match), ids as
int64, counts as float64; ``play_time_ms`` is kept (a watch-time target).

Example:

>>> specs = kuairand_features()
>>> [s["name"] for s in specs][:3], len(specs)
(['user_id', 'video_id', 'duration_ms'], 38)
"""

import logging
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.data.loaders.delimited import DEFAULT_CHUNK_ROWS
from mtrec.data.loaders.delimited import TextChunk
from mtrec.data.loaders.delimited import parse_binary
from mtrec.data.loaders.delimited import parse_floats
from mtrec.data.loaders.delimited import parse_ints
from mtrec.data.loaders.delimited import parse_strings
from mtrec.data.loaders.delimited import read_chunks
from mtrec.data.loaders.parquet_sink import ParquetSink
from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

_IDS = ("user_id", "video_id")
#: Heavy-tailed counts: dense features after a signed log1p.
_COUNTS = (
    "duration_ms", "follow_user_num", "fans_user_num", "friend_user_num",
    "register_days",
)  # fmt: skip
_SIZES = ("server_width", "server_height")
_CATEGORICAL = (
    "tab", "user_active_degree", "is_lowactive_period", "is_live_streamer",
    "is_video_author", "follow_user_num_range", "fans_user_num_range",
    "friend_user_num_range", "register_days_range",
    *(f"onehot_feat{i}" for i in range(18)),
    "video_type", "visible_status",
)  # fmt: skip
#: Columns every file must have (label sources included).
KUAIRAND_REQUIRED: tuple[str, ...] = (
    *_IDS, "is_click", "play_time_ms", *_COUNTS, *_SIZES, *_CATEGORICAL,
)  # fmt: skip
#: Optional behaviour columns of the KuaiRand log -> label written.
KUAIRAND_BEHAVIOURS: dict[str, str] = {
    "long_view": "long_view",
    "is_like": "like",
    "is_follow": "follow",
    "is_comment": "comment",
    "is_forward": "forward",
    "is_hate": "hate",
    "is_profile_enter": "profile_enter",
}
#: KuaiRand's long view: the whole video, or at least this long.
LONG_VIEW_MS = 18_000


def kuairand_features(embedding_dim: int = 8) -> list[dict]:
    """mtrec feature specs of the columns :func:`prepare_kuairand` writes.

    Args:
      embedding_dim: width of every embedding. Default 8.

    Returns:
      Dicts for ``mtrec.features.FeatureSet.from_dicts``: int64 ids and
      string categorical columns with vocabularies fitted on the train split;
      z-scored counts (after log1p) and video sizes. Label sources
      (``play_time_ms``, the behaviours) are not features.
    """
    specs: list[dict] = [
        {"name": n, "kind": "categorical", "dtype": "int64", "embedding_dim": 16}
        for n in _IDS
    ]
    specs += [{"name": n, "kind": "dense", "log1p": True} for n in _COUNTS]
    specs += [{"name": n, "kind": "dense"} for n in _SIZES]
    specs += [
        {"name": n, "kind": "categorical", "embedding_dim": embedding_dim}
        for n in _CATEGORICAL
    ]
    return specs


def prepare_kuairand(
    src: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[pathlib.Path]:
    """Validates joined KuaiRand tables and writes ``<out_dir>/<name>.parquet``.

    Each file is streamed in chunks of ``chunk_rows`` lines. Ids must be
    integers, counts and sizes finite numbers, behaviours 0 or 1. Every file
    of one call must hold the same behaviour columns (one label set).

    Args:
      src: one file or several.
      out_dir: directory of the Parquet files (created if missing).
      chunk_rows: lines per chunk (memory bound).

    Returns:
      The Parquet paths, in the order of ``src``.

    Raises:
      FileNotFoundError: a missing file.
      DataError: a missing column (named, line 1), a bad value (file, line,
        column), or files with different behaviour columns.
    """
    sources = [src] if isinstance(src, (str, os.PathLike)) else list(src)
    outputs = []
    behaviours: list[str] | None = None
    for path in map(pathlib.Path, sources):
        out = pathlib.Path(out_dir) / f"{path.name.split('.')[0]}.parquet"
        with ParquetSink(out) as sink:
            for chunk in read_chunks(path, header=True, chunk_rows=chunk_rows):
                found = _behaviours(chunk)
                if behaviours is None:
                    behaviours = found
                elif found != behaviours:
                    raise DataError(
                        f"{path}, line 1: behaviour columns {found} differ from "
                        f"{behaviours} of the first file"
                    )
                sink.write(_convert(chunk, found))
            if not sink.rows:
                raise DataError(f"{path}: the file has no rows")
        logger.info("%s -> %s (%d rows)", path, out, sink.rows)
        outputs.append(out)
    return outputs


def _behaviours(chunk: TextChunk) -> list[str]:
    columns = list(chunk.frame.columns)
    missing = [c for c in KUAIRAND_REQUIRED if c not in columns]
    if missing:
        raise DataError(
            f"{chunk.path}, line 1, column {missing[0]!r}: missing from the header "
            f"(missing: {missing}); expected a KuaiRand log joined with its user "
            "and video features"
        )
    return [c for c in KUAIRAND_BEHAVIOURS if c in columns]


def _convert(chunk: TextChunk, behaviours: list[str]) -> pd.DataFrame:
    columns: dict = {name: parse_ints(chunk, name) for name in _IDS}
    columns.update({name: parse_floats(chunk, name) for name in _COUNTS + _SIZES})
    for name in _CATEGORICAL:
        values = pd.Series(parse_strings(chunk, name), dtype=object)
        columns[name] = values.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    play = parse_floats(chunk, "play_time_ms")
    columns["play_time_ms"] = play
    columns["click"] = parse_binary(chunk, "is_click")
    if "long_view" not in behaviours:
        duration = columns["duration_ms"]
        threshold = np.where(
            duration > 0, np.minimum(duration, LONG_VIEW_MS), LONG_VIEW_MS
        )
        columns["long_view"] = (play >= threshold).astype(np.int8)
    for name in behaviours:
        columns[KUAIRAND_BEHAVIOURS[name]] = parse_binary(chunk, name)
    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})
