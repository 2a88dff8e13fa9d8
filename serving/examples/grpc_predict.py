"""Predict over gRPC with TF Serving's own stubs; works against TF Serving and
``mtrec serve`` alike.

Reads the candidates of ``predict_request.json`` (the REST example's body),
asks the server for the signature's input names and dtypes
(``GetModelMetadata``), sends a ``PredictRequest`` through
``PredictionServiceStub`` and prints one line of probabilities per candidate;
then scores the same candidates as serialized ``tf.Example`` protos through the
``predict_examples`` signature.

Needs grpcio, tensorflow-serving-api and tensorflow (for ``make_tensor_proto``);
not mtrec::

    python serving/examples/grpc_predict.py [--target localhost:8500] [--model esmm]
"""

import argparse
import json
import pathlib
import sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

HERE = pathlib.Path(__file__).resolve().parent


def input_dtypes(stub, model: str, signature: str) -> dict[str, tf.DType]:
    """The signature's input names and dtypes, from the server's metadata."""
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    inputs = signatures.signature_def[signature].inputs
    return {name: tf.dtypes.as_dtype(info.dtype) for name, info in inputs.items()}


def predict(stub, model: str, signature: str, inputs: dict) -> dict[str, np.ndarray]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model  # no version: the newest
    request.model_spec.signature_name = signature
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    response = stub.Predict(request, timeout=10)
    print(
        f"model {response.model_spec.name} version {response.model_spec.version.value}"
        f", signature {response.model_spec.signature_name}"
    )
    return {name: tf.make_ndarray(t) for name, t in response.outputs.items()}


def to_example(row: dict, dtypes: dict[str, tf.DType]) -> bytes:
    feature = {}
    for name, dtype in dtypes.items():
        if dtype == tf.string:
            value = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[row[name].encode()])
            )
        elif dtype.is_integer:
            value = tf.train.Feature(int64_list=tf.train.Int64List(value=[row[name]]))
        else:
            value = tf.train.Feature(float_list=tf.train.FloatList(value=[row[name]]))
        feature[name] = value
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:8500", help="host:port")
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--request", default=str(HERE / "predict_request.json"))
    args = parser.parse_args(argv)

    rows = json.loads(pathlib.Path(args.request).read_text())["instances"]
    with grpc.insecure_channel(args.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        dtypes = input_dtypes(stub, args.model, "serving_default")
        inputs = {
            name: np.array([row[name] for row in rows], dtype.as_numpy_dtype)
            if dtype != tf.string
            else np.array([row[name].encode() for row in rows], dtype=object)
            for name, dtype in dtypes.items()
        }
        outputs = predict(stub, args.model, "serving_default", inputs)
        for i in range(len(rows)):
            print(f"candidate {i}: " + _scores(outputs, i))
        examples = np.array([to_example(row, dtypes) for row in rows], dtype=object)
        by_examples = predict(
            stub, args.model, "predict_examples", {"examples": examples}
        )
        for i in range(len(rows)):
            print(f"candidate {i}: " + _scores(by_examples, i))
    return 0


def _scores(outputs: dict[str, np.ndarray], i: int) -> str:
    return "  ".join(f"{name}={outputs[name][i]:.6f}" for name in sorted(outputs))


if __name__ == "__main__":
    sys.exit(main())
