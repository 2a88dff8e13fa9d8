"""TF Serving's answer to Classify and Regress, which mtrec serve does not run.

mtrec exports predict signatures only. TF Serving refuses Classify or
Regress on such a signature with INVALID_ARGUMENT (HTTP 400) before running
anything, so this module repeats the checks TF Serving makes on the
SignatureDef (``GetClassificationSignatureDef`` / ``PreProcessClassification``
in tensorflow_serving/servables/tensorflow/classifier.cc and their regression
twins in regressor.cc, with TF Serving's default
``--enable_signature_method_name_check=false``) and gives the same error. A
signature that passes them, which TF Serving would run, gets UNIMPLEMENTED.
"""

import grpc
from tensorflow.core.protobuf import meta_graph_pb2

from mtrec.serving.errors import ServingError
from mtrec.serving.servable import DEFAULT_SIGNATURE

CLASSIFY = "classify"
REGRESS = "regress"


def refuse_classify_or_regress(
    meta_graph: meta_graph_pb2.MetaGraphDef, method: str, signature_name: str
) -> ServingError:
    """The error for a ``:classify`` / ``:regress`` request on a signature.

    Args:
      meta_graph: the servable's ``serve`` MetaGraphDef.
      method: ``"classify"`` or ``"regress"``.
      signature_name: the requested signature (``""``: ``serving_default``).

    Returns:
      INVALID_ARGUMENT worded as TF Serving when TF Serving would refuse the
      signature too, else UNIMPLEMENTED.
    """
    if method not in (CLASSIFY, REGRESS):
        raise ValueError(
            f"`method` must be {CLASSIFY!r} or {REGRESS!r}. "
            f"Received: `method={method!r}`"
        )
    name = signature_name or DEFAULT_SIGNATURE
    if name not in meta_graph.signature_def:
        return ServingError.invalid(f"No signature was found with the name: {name}")
    signature = meta_graph.signature_def[name]
    problem = (
        _classification_problem(signature)
        if method == CLASSIFY
        else _regression_problem(signature)
    )
    if problem:
        return ServingError.invalid(problem)
    return ServingError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"mtrec serve implements Predict only; TF Serving would run :{method} on "
        f'signature "{name}"',
    )


def _classification_problem(signature: meta_graph_pb2.SignatureDef) -> str:
    if len(signature.inputs) != 1:
        return "Expected one input Tensor."
    if len(signature.outputs) not in (1, 2):
        return f"Expected one or two output Tensors, found {len(signature.outputs)}"
    if "inputs" not in signature.inputs:
        return "No classification inputs found in SignatureDef"
    if "classes" not in signature.outputs and "scores" not in signature.outputs:
        return (
            "Expected classification signature outputs to contain at least one "
            'of "classes" or "scores".'
        )
    return ""


def _regression_problem(signature: meta_graph_pb2.SignatureDef) -> str:
    if len(signature.inputs) != 1:
        return "Expected one input Tensor."
    if len(signature.outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in signature.inputs:
        return "No regression inputs found in SignatureDef"
    if "outputs" not in signature.outputs:
        return "No regression outputs found in SignatureDef"
    return ""
