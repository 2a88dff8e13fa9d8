"""Ali-CCP (ESMM's click and conversion log): processed CSV forms to Parquet.

Ali-CCP (Ma et al., SIGIR 2018) is distributed raw as
``sample_skeleton_{train,test}.csv`` + ``common_features_{train,test}.csv``
(tens of GB); models are trained on processed forms of it. Two processed
CSV schemas are read here, with or without a header line:

- ``aitm`` (xidongbo/AITM ``process_public_dataset.py``, PaddleRec's AITM
  sample): ``click,purchase`` and 18 integer-id fields
  ``101,121,122,124,125,126,127,128,129,205,206,207,216,508,509,702,853,301``;
- ``torchrechub`` (torch-rechub / Scenario-Wise-Rec ``ali_ccp_*.csv``):
  33 columns, the ``aitm`` fields plus ``210``, the four behaviour fields
  ``109_14,110_14,127_14,150_14`` and eight float weights ``D109_14 ...
  D853``.

PaddleRec's joined slot form is read by :mod:`mtrec.data.loaders.aliccp_slot`
(``prepare_aliccp`` detects it). The raw skeleton + common-features files
are not read: no sample of them is available to test against.

The prepared Parquet file has ``click`` and ``purchase`` (int8), one int64
column ``f<field>`` per id field (``f101``, ``f109_14``) and one float64
column ``d<field>`` per weight (``d109_14``): field names that are valid
identifiers. ``features/aliccp.yaml`` (the shipped ``aliccp`` config) uses
the 18 ``aitm`` fields, present in both forms.

Example:

>>> [spec["name"] for spec in aliccp_features()][:3]
['f101', 'f121', 'f122']
>>> len(aliccp_features("torchrechub"))
31
"""

import logging
import os
import pathlib
from collections.abc import Sequence

import pandas as pd

from mtrec.data.loaders.aliccp_slot import aliccp_slot_features
from mtrec.data.loaders.aliccp_slot import slot_frames
from mtrec.data.loaders.delimited import DEFAULT_CHUNK_ROWS
from mtrec.data.loaders.delimited import TextChunk
from mtrec.data.loaders.delimited import open_text
from mtrec.data.loaders.delimited import parse_binary
from mtrec.data.loaders.delimited import parse_floats
from mtrec.data.loaders.delimited import parse_ints
from mtrec.data.loaders.delimited import read_chunks
from mtrec.data.loaders.label_rule import LabelRule
from mtrec.data.loaders.parquet_sink import ParquetSink
from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

#: The two labels of every form: click, and purchase (a conversion).
ALICCP_LABELS: tuple[str, str] = ("click", "purchase")
_AITM_FIELDS = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "216", "508", "509", "702", "853", "301",
)  # fmt: skip
_TORCHREC_FIELDS = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "210", "216", "508", "509", "702", "853", "301",
    "109_14", "110_14", "127_14", "150_14",
)  # fmt: skip
_TORCHREC_WEIGHTS = (
    "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853",
)  # fmt: skip

#: The column order of each processed schema, as in its files.
ALICCP_SCHEMAS: dict[str, tuple[str, ...]] = {
    "aitm": (*ALICCP_LABELS, *_AITM_FIELDS),
    "torchrechub": (*ALICCP_LABELS, *_TORCHREC_FIELDS, *_TORCHREC_WEIGHTS),
}


def _column(field: str) -> str:
    """The prepared column of a source column: ``101`` -> ``f101``."""
    if field.startswith("D"):
        return "d" + field[1:]
    return "f" + field


def aliccp_features(schema: str = "aitm", embedding_dim: int = 8) -> list[dict]:
    """mtrec feature specs of the columns :func:`prepare_aliccp` writes.

    Args:
      schema: ``"aitm"`` (18 id fields; also present in the other forms),
        ``"torchrechub"`` (23 id fields and 8 dense weights) or ``"slot"``
        (PaddleRec's slot form, see
        :func:`mtrec.data.loaders.aliccp_slot.aliccp_slot_features`).
      embedding_dim: width of every id embedding. Default 8.

    Returns:
      Dicts for ``mtrec.features.FeatureSet.from_dicts``: int64 categorical
      ids with vocabularies fitted on the train split, z-scored dense weights.
    """
    if schema == "slot":
        return aliccp_slot_features(embedding_dim)
    if schema not in ALICCP_SCHEMAS:
        raise ValueError(
            f"`schema` must be one of {[*ALICCP_SCHEMAS, 'slot']}. "
            f"Received: `schema={schema!r}`"
        )
    specs: list[dict] = []
    for field in ALICCP_SCHEMAS[schema][len(ALICCP_LABELS) :]:
        if field.startswith("D"):
            specs.append({"name": _column(field), "kind": "dense"})
        else:
            specs.append(
                {
                    "name": _column(field),
                    "kind": "categorical",
                    "dtype": "int64",
                    "embedding_dim": embedding_dim,
                }
            )
    return specs


def detect_aliccp_form(path: str | os.PathLike) -> tuple[str, bool]:
    """``(schema, has_header)`` of an Ali-CCP file, from its first line.

    ``schema`` is ``"aitm"``, ``"torchrechub"`` or ``"slot"``.

    Raises:
      DataError: a first line that is none of the forms (naming file and line).
    """
    with open_text(path) as f:
        first = f.readline().rstrip("\r\n")
    fields = first.split(",")
    if len(fields) > 3 and ":" in fields[3]:
        return "slot", False
    for schema, columns in ALICCP_SCHEMAS.items():
        if [field.strip() for field in fields] == list(columns):
            return schema, True
    for schema, columns in ALICCP_SCHEMAS.items():
        if len(fields) == len(columns) and fields[0].strip() != "click":
            return schema, False
    raise DataError(
        f"{path}, line 1: not an Ali-CCP file: expected the header or "
        f"{len(ALICCP_SCHEMAS['aitm'])} ('aitm') or "
        f"{len(ALICCP_SCHEMAS['torchrechub'])} ('torchrechub') comma-separated "
        f"fields, or PaddleRec's slot form 'id,click,ctcvr,field:id,...'; "
        f"got {len(fields)} fields: {first[:120]!r}"
    )


def prepare_aliccp(
    src: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    on_purchase_without_click: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[pathlib.Path]:
    """Validates Ali-CCP files and writes each as ``<out_dir>/<name>.parquet``.

    Each file's form is detected (:func:`detect_aliccp_form`); it is streamed
    in chunks of ``chunk_rows`` lines. Every id must be an integer, every
    weight a finite number, every label 0 or 1.

    Args:
      src: one file or several (e.g. the train and the test file).
      out_dir: directory of the Parquet files (created if missing).
      on_purchase_without_click: a row with ``purchase=1`` and ``click=0``
        breaks ESMM's assumption. ``"error"`` (default): raise, with the
        count and the first line, after reading the file; ``"drop"``: drop
        such rows and log the count and the first line.
      chunk_rows: lines per chunk (memory bound).

    Returns:
      The Parquet paths, in the order of ``src``; ``<name>`` is the file
      name without its suffixes (``ctr_cvr.train`` -> ``ctr_cvr.train``;
      ``train.csv.gz`` -> ``train``).

    Raises:
      FileNotFoundError: a missing file.
      DataError: a malformed file; the message names the file, the line and
        the column.
    """
    sources = [src] if isinstance(src, (str, os.PathLike)) else list(src)
    outputs = []
    for path in map(pathlib.Path, sources):
        schema, header = detect_aliccp_form(path)
        out = pathlib.Path(out_dir) / f"{_stem(path)}.parquet"
        rule = LabelRule("purchase", "click", on_purchase_without_click)
        if schema == "slot":
            frames = slot_frames(path, rule, chunk_rows)
        else:
            chunks = read_chunks(
                path,
                header=header,
                columns=ALICCP_SCHEMAS[schema],
                chunk_rows=chunk_rows,
            )
            frames = (_convert(chunk, rule) for chunk in chunks)
        _write(path, out, frames, rule)
        logger.info("%s (%s form) -> %s", path, schema, out)
        outputs.append(out)
    return outputs


def _stem(path: pathlib.Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".txt"):
        name = name.removesuffix(suffix)
    return name


def _convert(chunk: TextChunk, rule: LabelRule) -> pd.DataFrame:
    columns = {label: parse_binary(chunk, label) for label in ALICCP_LABELS}
    for field in chunk.frame.columns[len(ALICCP_LABELS) :]:
        parse = parse_floats if field.startswith("D") else parse_ints
        columns[_column(field)] = parse(chunk, field)
    keep = rule.check(columns["click"], columns["purchase"], chunk.lines)
    return pd.DataFrame(columns)[keep]


def _write(source, out: pathlib.Path, frames, rule: LabelRule) -> None:
    with ParquetSink(out) as sink:
        for frame in frames:
            sink.write(frame)
        rule.finish(source)
        if not sink.rows:
            raise DataError(f"{source}: the file has no rows")
