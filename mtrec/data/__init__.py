"""Click-log readers, validation, the prepare pass and synthetic generators."""

from mtrec.data.census import census_labels
from mtrec.data.census import load_census_income
from mtrec.data.census_inputs import CENSUS_INPUT_SETS
from mtrec.data.census_inputs import COLLEGE_EDUCATION
from mtrec.data.census_inputs import TASK_GROUPS
from mtrec.data.census_inputs import census_features
from mtrec.data.census_inputs import census_input_columns
from mtrec.data.census_split import prepare_census_income
from mtrec.data.encoded_shards import encode_prepared
from mtrec.data.loaders import aliccp_features
from mtrec.data.loaders import aliexpress_features
from mtrec.data.loaders import kuairand_features
from mtrec.data.loaders import prepare_aliccp
from mtrec.data.loaders import prepare_aliexpress
from mtrec.data.loaders import prepare_kuairand
from mtrec.data.mmoe_synthetic import generate_mmoe_regression
from mtrec.data.mmoe_synthetic import mmoe_task_params
from mtrec.data.mmoe_synthetic import standardize_labels
from mtrec.data.native import native_dataset
from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import PreparedPart
from mtrec.data.prepare import load_prepared
from mtrec.data.prepare import prepare_data
from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import make_dataset
from mtrec.data.reader import read_frame
from mtrec.data.reader import surface_data_errors
from mtrec.data.related_tasks import RELATED_TASKS
from mtrec.data.related_tasks import add_related_tasks
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.selection_bias import selection_bias_report
from mtrec.data.synthetic import generate_click_log
from mtrec.data.table_writer import write_table

__all__ = [
    "CENSUS_INPUT_SETS",
    "COLLEGE_EDUCATION",
    "TASK_GROUPS",
    "ColumnSchema",
    "DataError",
    "PreparedData",
    "PreparedPart",
    "RELATED_TASKS",
    "ReadStats",
    "Split",
    "iter_chunks",
    "add_related_tasks",
    "aliccp_features",
    "aliexpress_features",
    "census_features",
    "census_input_columns",
    "census_labels",
    "encode_prepared",
    "generate_click_log",
    "generate_mmoe_regression",
    "kuairand_features",
    "load_census_income",
    "load_prepared",
    "make_dataset",
    "mmoe_task_params",
    "native_dataset",
    "prepare_aliccp",
    "prepare_aliexpress",
    "prepare_census_income",
    "prepare_data",
    "prepare_kuairand",
    "read_frame",
    "selection_bias_report",
    "standardize_labels",
    "surface_data_errors",
    "write_table",
]
