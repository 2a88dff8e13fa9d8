"""TF Serving's gRPC ``PredictionService`` and ``ModelService`` on grpcio."""

import logging
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from mtrec.serving import protos
from mtrec.serving.batcher import Batcher
from mtrec.serving.classify_regress import CLASSIFY
from mtrec.serving.classify_regress import REGRESS
from mtrec.serving.classify_regress import refuse_classify_or_regress
from mtrec.serving.errors import ServingError
from mtrec.serving.manager import ModelManager
from mtrec.serving.servable import Servable

logger = logging.getLogger(__name__)

_METHODS = {
    "tensorflow/serving/classify": CLASSIFY,
    "tensorflow/serving/regress": REGRESS,
}


def _spec_version(model_spec) -> int | None:
    """The version a ModelSpec asks for; a label is INVALID_ARGUMENT, as TF
    Serving answers a label it does not know (server_core.cc)."""
    if model_spec.WhichOneof("version_choice") == "version_label":
        raise ServingError.invalid(
            f"Unrecognized servable version label: {model_spec.version_label} "
            "(mtrec serve has no version labels)"
        )
    return model_spec.version.value if model_spec.HasField("version") else None


def _servable(manager: ModelManager, model_spec) -> Servable:
    if not model_spec.name:
        raise ServingError.invalid("ModelSpec has no name specified.")
    return manager.get(model_spec.name, _spec_version(model_spec))


def _abort(context: grpc.ServicerContext, err: Exception):
    if isinstance(err, ServingError):
        context.abort(err.code, err.message)
    logger.exception("gRPC request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``Predict`` and ``GetModelMetadata``. ``Classify``, ``Regress`` and
    ``MultiInference`` are refused as TF Serving refuses them on predict
    signatures (INVALID_ARGUMENT; ``classify_regress``).

    Args:
      manager: the loaded versions.
      max_batch_size: larger batches are INVALID_ARGUMENT (``None``: no limit).
      batcher: merges concurrent Predict calls (``None``: one call each).
    """

    def __init__(
        self,
        manager: ModelManager,
        max_batch_size: int | None,
        batcher: Batcher | None = None,
    ):
        self.manager = manager
        self.max_batch_size = max_batch_size
        self.batcher = batcher

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            servable = _servable(self.manager, request.model_spec)
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
                batcher=self.batcher,
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
            servable = _servable(self.manager, request.model_spec)
            return protos.metadata_response(
                servable, fields=tuple(request.metadata_field)
            )
        except Exception as err:
            _abort(context, err)

    def Classify(self, request, context):  # noqa: N802
        self._refuse(request.model_spec, CLASSIFY, context)

    def Regress(self, request, context):  # noqa: N802
        self._refuse(request.model_spec, REGRESS, context)

    def MultiInference(self, request, context):  # noqa: N802
        try:
            # TF Serving resolves the first task's model (none: no name).
            spec = request.tasks[0].model_spec if request.tasks else None
            servable = _servable(self.manager, spec or model_pb2.ModelSpec())
            for task in request.tasks:
                if task.method_name not in _METHODS:
                    raise ServingError(
                        grpc.StatusCode.UNIMPLEMENTED,
                        f"Unsupported signature method_name: {task.method_name}",
                    )
                refusal = refuse_classify_or_regress(
                    servable.meta_graph,
                    _METHODS[task.method_name],
                    task.model_spec.signature_name,
                )
                if refusal.code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise refusal
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED, "mtrec serve implements Predict only"
            )
        except Exception as err:
            _abort(context, err)

    def _refuse(self, model_spec, method: str, context) -> None:
        try:
            servable = _servable(self.manager, model_spec)
            raise refuse_classify_or_regress(
                servable.meta_graph, method, model_spec.signature_name
            )
        except Exception as err:
            _abort(context, err)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """``GetModelStatus``; ``HandleReloadConfigRequest`` is UNIMPLEMENTED."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            if not request.HasField("model_spec"):
                raise ServingError.invalid("Missing ModelSpec")
            # GetModelStatus reads only a version number; a label is ignored
            # and every version reported (get_model_status_impl.cc).
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            return protos.status_response(self.manager, spec.name, version)
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
    batcher: Batcher | None = None,
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
        PredictionService(manager, max_batch_size, batcher), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager), server
    )
    return server
