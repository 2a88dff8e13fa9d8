"""TF Serving's gRPC ``PredictionService`` and ``ModelService`` on grpcio."""

import logging
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from mtrec.serving import protos
from mtrec.serving.errors import ServingError
from mtrec.serving.manager import ModelManager

logger = logging.getLogger(__name__)


def _spec_version(model_spec) -> int | None:
    if model_spec.WhichOneof("version_choice") == "version_label":
        raise ServingError.not_found(
            f"Unrecognized servable version label: {model_spec.version_label} "
            "(mtrec serve has no version labels)"
        )
    return model_spec.version.value if model_spec.HasField("version") else None


def _abort(context: grpc.ServicerContext, err: Exception):
    if isinstance(err, ServingError):
        context.abort(err.code, err.message)
    logger.exception("gRPC request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``Predict`` and ``GetModelMetadata``; ``Classify``, ``Regress`` and
    ``MultiInference`` answer UNIMPLEMENTED (mtrec exports predict signatures).

    Args:
      manager: the loaded versions.
      max_batch_size: larger batches are INVALID_ARGUMENT (``None``: no limit).
    """

    def __init__(self, manager: ModelManager, max_batch_size: int | None):
        self.manager = manager
        self.max_batch_size = max_batch_size

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            servable = self.manager.get(
                request.model_spec.name, _spec_version(request.model_spec)
            )
            signature = servable.signature(request.model_spec.signature_name)
            inputs = {
                name: protos.to_ndarray(name, proto)
                for name, proto in request.inputs.items()
            }
            outputs = servable.predict(
                signature.name,
                inputs,
                output_filter=request.output_filter,
                max_batch_size=self.max_batch_size,
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(protos.model_spec(servable, signature.name))
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response
        except Exception as err:
            _abort(context, err)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            servable = self.manager.get(
                request.model_spec.name, _spec_version(request.model_spec)
            )
            return protos.metadata_response(
                servable, fields=tuple(request.metadata_field)
            )
        except Exception as err:
            _abort(context, err)

    def Classify(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "mtrec serve implements Predict")

    def Regress(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "mtrec serve implements Predict")

    def MultiInference(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "mtrec serve implements Predict")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """``GetModelStatus``; ``HandleReloadConfigRequest`` is UNIMPLEMENTED."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            return protos.status_response(
                self.manager, request.model_spec.name, _spec_version(request.model_spec)
            )
        except Exception as err:
            _abort(context, err)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "mtrec serve serves one model from its base"
        )


def create_grpc_server(
    manager: ModelManager,
    *,
    max_message_bytes: int,
    max_batch_size: int | None,
    workers: int = 8,
) -> grpc.Server:
    """A grpcio server with both services added (no port bound yet)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="mtrec-grpc"
        ),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, max_batch_size), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager), server
    )
    return server
