"""Loaders of public multi-task data sets: Ali-CCP, AliExpress, KuaiRand.

Each ``prepare_<dataset>(src, out_dir, ...)`` validates the published files
(every bad value named by file, line and column) and writes Parquet files
that the shipped config of the same name trains on; ``<dataset>_features()``
returns the mtrec feature specs of those files. See ``docs/datasets.md``.
"""

from mtrec.data.loaders.aliccp import ALICCP_SCHEMAS
from mtrec.data.loaders.aliccp import aliccp_features
from mtrec.data.loaders.aliccp import detect_aliccp_form
from mtrec.data.loaders.aliccp import prepare_aliccp
from mtrec.data.loaders.aliexpress import ALIEXPRESS_COLUMNS
from mtrec.data.loaders.aliexpress import aliexpress_features
from mtrec.data.loaders.aliexpress import prepare_aliexpress
from mtrec.data.loaders.kuairand import KUAIRAND_BEHAVIOURS
from mtrec.data.loaders.kuairand import KUAIRAND_REQUIRED
from mtrec.data.loaders.kuairand import kuairand_features
from mtrec.data.loaders.kuairand import prepare_kuairand

__all__ = [
    "ALICCP_SCHEMAS",
    "ALIEXPRESS_COLUMNS",
    "KUAIRAND_BEHAVIOURS",
    "KUAIRAND_REQUIRED",
    "aliccp_features",
    "aliexpress_features",
    "detect_aliccp_form",
    "kuairand_features",
    "prepare_aliccp",
    "prepare_aliexpress",
    "prepare_kuairand",
]
