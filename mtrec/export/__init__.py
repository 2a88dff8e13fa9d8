"""SavedModel export for TF Serving: signatures, warmup requests, versions."""

from mtrec.export.saved_model import CONFIG_ASSET
from mtrec.export.saved_model import export_saved_model
from mtrec.export.saved_model import next_version
from mtrec.export.saved_model import remove_stale_partial_exports
from mtrec.export.signatures import EXAMPLES_INPUT
from mtrec.export.signatures import PREDICT_EXAMPLES
from mtrec.export.signatures import SERVING_DEFAULT
from mtrec.export.signatures import example_parsing_spec
from mtrec.export.signatures import examples_function
from mtrec.export.signatures import feature_arrays
from mtrec.export.signatures import serving_function
from mtrec.export.signatures import to_examples
from mtrec.export.warmup import WARMUP_FILE
from mtrec.export.warmup import read_warmup_file
from mtrec.export.warmup import warmup_requests
from mtrec.export.warmup import write_warmup_file

__all__ = [
    "CONFIG_ASSET",
    "EXAMPLES_INPUT",
    "PREDICT_EXAMPLES",
    "SERVING_DEFAULT",
    "WARMUP_FILE",
    "example_parsing_spec",
    "examples_function",
    "export_saved_model",
    "feature_arrays",
    "next_version",
    "remove_stale_partial_exports",
    "read_warmup_file",
    "serving_function",
    "to_examples",
    "warmup_requests",
    "write_warmup_file",
]
