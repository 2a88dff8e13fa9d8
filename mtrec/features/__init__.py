"""Feature specifications, preprocessing state and the embedding layer."""

from mtrec.features.categorical import CategoricalFeature
from mtrec.features.dense import DenseFeature
from mtrec.features.embedding import OUTPUT_ORDERS
from mtrec.features.embedding import FeatureEmbedding
from mtrec.features.feature_set import FeatureSet
from mtrec.features.id_encoding import IdEncoder
from mtrec.features.id_encoding import check_row_ids_keys
from mtrec.features.id_encoding import encodable_features
from mtrec.features.id_encoding import row_ids_key
from mtrec.features.input_checks import checked_finite_columns
from mtrec.features.input_checks import ids_in_range
from mtrec.features.input_dtypes import check_input_dtype
from mtrec.features.input_dtypes import stack_ids
from mtrec.features.multi_valued import MultiValuedFeature
from mtrec.features.preprocessing import PreprocessingState
from mtrec.features.preprocessing import fit_preprocessing
from mtrec.features.quantile_boundaries import quantile_boundaries
from mtrec.features.table_lookup import gather_with_dense_gradient
from mtrec.features.table_lookup import int64_pairs
from mtrec.features.transforms import bucket_columns
from mtrec.features.transforms import dense_block
from mtrec.features.transforms import dense_columns
from mtrec.features.transforms import dense_value
from mtrec.features.transforms import zscored

__all__ = [
    "OUTPUT_ORDERS",
    "CategoricalFeature",
    "DenseFeature",
    "FeatureEmbedding",
    "FeatureSet",
    "IdEncoder",
    "MultiValuedFeature",
    "PreprocessingState",
    "bucket_columns",
    "check_input_dtype",
    "check_row_ids_keys",
    "checked_finite_columns",
    "dense_block",
    "dense_columns",
    "dense_value",
    "encodable_features",
    "fit_preprocessing",
    "gather_with_dense_gradient",
    "ids_in_range",
    "int64_pairs",
    "quantile_boundaries",
    "row_ids_key",
    "stack_ids",
    "zscored",
]
