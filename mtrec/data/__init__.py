"""Click-log readers, validation, the prepare pass and synthetic generators.

The public names load lazily (PEP 562), each from its module on first use, so
that a module needing one leaf of this package (``mtrec.features`` reads
``mtrec.data.schema``) does not import every reader, loader and pyarrow's
Parquet and file-system modules with it.
"""

import importlib

# Public API: name -> the module that defines it.
_PUBLIC = {
    "census_labels": "mtrec.data.census",
    "load_census_income": "mtrec.data.census",
    "CENSUS_INPUT_SETS": "mtrec.data.census_inputs",
    "CENSUS_NUMERIC_ENCODINGS": "mtrec.data.census_inputs",
    "COLLEGE_EDUCATION": "mtrec.data.census_inputs",
    "TASK_GROUPS": "mtrec.data.census_inputs",
    "census_features": "mtrec.data.census_inputs",
    "census_input_columns": "mtrec.data.census_inputs",
    "prepare_census_income": "mtrec.data.census_split",
    "encode_prepared": "mtrec.data.encoded_shards",
    "aliccp_features": "mtrec.data.loaders",
    "aliexpress_features": "mtrec.data.loaders",
    "kuairand_features": "mtrec.data.loaders",
    "prepare_aliccp": "mtrec.data.loaders",
    "prepare_aliexpress": "mtrec.data.loaders",
    "prepare_kuairand": "mtrec.data.loaders",
    "generate_mmoe_regression": "mtrec.data.mmoe_synthetic",
    "mmoe_task_params": "mtrec.data.mmoe_synthetic",
    "standardize_labels": "mtrec.data.mmoe_synthetic",
    "native_dataset": "mtrec.data.native",
    "PreparedData": "mtrec.data.prepare",
    "PreparedPart": "mtrec.data.prepare",
    "load_prepared": "mtrec.data.prepare",
    "prepare_data": "mtrec.data.prepare",
    "ReadStats": "mtrec.data.reader",
    "Split": "mtrec.data.reader",
    "iter_chunks": "mtrec.data.reader",
    "make_dataset": "mtrec.data.reader",
    "read_frame": "mtrec.data.reader",
    "surface_data_errors": "mtrec.data.reader",
    "RELATED_TASKS": "mtrec.data.related_tasks",
    "add_related_tasks": "mtrec.data.related_tasks",
    "ColumnSchema": "mtrec.data.schema",
    "DataError": "mtrec.data.schema",
    "selection_bias_report": "mtrec.data.selection_bias",
    "generate_click_log": "mtrec.data.synthetic",
    "write_table": "mtrec.data.table_writer",
}

__all__ = sorted(_PUBLIC, key=str.upper)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mtrec.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
