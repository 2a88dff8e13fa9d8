"""TF Serving response protos (``tensorflow-serving-api``), shared by REST and gRPC."""

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2

from mtrec.serving.errors import ServingError
from mtrec.serving.manager import ModelManager
from mtrec.serving.servable import Servable

#: The only ``metadata_field`` TF Serving's GetModelMetadata supports.
SIGNATURE_DEF_FIELD = "signature_def"


def model_spec(servable: Servable, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
    spec.version.value = servable.version
    return spec


def signature_def_map(servable: Servable) -> get_model_metadata_pb2.SignatureDefMap:
    """Every SignatureDef of the ``serve`` MetaGraph, as TF Serving reports them."""
    result = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in servable.meta_graph.signature_def.items():
        result.signature_def[key].CopyFrom(signature_def)
    return result


def metadata_response(
    servable: Servable,
    *,
    version_requested: int | None = None,
    fields: tuple[str, ...] = (SIGNATURE_DEF_FIELD,),
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """``GetModelMetadataResponse`` with the ``signature_def`` field packed.

    Raises:
      ServingError: INVALID_ARGUMENT for no field or a field other than
        ``signature_def`` (TF Serving supports that one only).
    """
    if not fields:
        raise ServingError.invalid(
            "GetModelMetadataRequest must specify at least one metadata_field"
        )
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise ServingError.invalid(f"Metadata field {field} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.CopyFrom(model_spec(servable))
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map(servable))
    return response


def status_response(
    manager: ModelManager, name: str, version: int | None = None
) -> get_model_status_pb2.GetModelStatusResponse:
    """``GetModelStatusResponse``: each version's state and error, newest first."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in manager.status(name, version):
        entry = response.model_version_status.add()
        entry.version = status.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
        entry.status.error_code = error_codes_pb2.Code.Value(status.error_code.name)
        entry.status.error_message = status.error_message
    return response


def to_ndarray(name: str, proto) -> np.ndarray:
    """A request ``TensorProto`` as numpy (strings as object arrays of bytes).

    Raises:
      ServingError: INVALID_ARGUMENT for a proto that is not a valid tensor.
    """
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as err:
        raise ServingError.invalid(
            f"input '{name}' is not a valid tensor: {err}"
        ) from err
