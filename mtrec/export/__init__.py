"""SavedModel export for TF Serving."""

from mtrec.export.saved_model import export_saved_model
from mtrec.export.saved_model import next_version
from mtrec.export.saved_model import serving_function

__all__ = ["export_saved_model", "next_version", "serving_function"]
