"""Shared checks for every layer in ``mtrec.layers``: subclass as ``TestX``.

``LayerSuite`` holds the checks every layer must pass (output shapes, weight
count after ``build``, config round trip, save/load in both formats, one SGD
step, bad arguments, distinct initial experts, seeded reproducibility, dropout
only in training). ``GatedLayerSuite`` adds the gate checks of the mixtures.
The numpy functions at the bottom are reference implementations for tests.
"""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import inspect
import re

import numpy as np
import pytest
import tensorflow as tf

SEEDED_INITIALIZER = {"class_name": "GlorotUniform", "config": {"seed": 1}}

# (hidden sizes, the error's message with the argument's name as {0}).
BAD_UNITS = [
    (2.7, "`{0}` must be a sequence of ints. Received: `{0}=2.7`"),
    ("64", "`{0}` must be a sequence of ints. Received: `{0}='64'`"),
    ([0], "`{0}` must all be >= 1. Received: `{0}=[0]`"),
    ([True], "`{0}` must be a sequence of ints. Received: `{0}=[True]`"),
]


def as_dict(outputs) -> dict:
    """Layer outputs as a dict (a single tensor becomes ``{"output": tensor}``)."""
    if isinstance(outputs, dict):
        return dict(outputs)
    return {"output": outputs}


def to_numpy(outputs) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in as_dict(outputs).items()}


def assert_outputs_close(actual, expected, atol: float = 1e-6) -> None:
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=atol, err_msg=key)


def flat_kernels(layer: tf.keras.layers.Layer) -> np.ndarray:
    """All kernels of ``layer`` (biases start at zero), raveled and concatenated."""
    kernels = [w.numpy().ravel() for w in layer.weights if "kernel" in w.name]
    assert kernels, f"{layer.name} has no kernels"
    return np.concatenate(kernels)


def assert_pairwise_distinct(named_vectors: dict[str, np.ndarray]) -> None:
    """No two vectors agree on their common prefix.

    Comparing prefixes also catches two layers of different shapes drawn from the
    same seeded random stream.
    """
    names = list(named_vectors)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = min(named_vectors[a].size, named_vectors[b].size)
            assert not np.allclose(named_vectors[a][:n], named_vectors[b][:n]), (
                f"{a} and {b} start with equal weights"
            )


def assert_softmax_rows(gates: np.ndarray, width: int) -> None:
    gates = np.asarray(gates)
    assert gates.shape[-1] == width
    assert np.all(gates >= 0.0)
    np.testing.assert_allclose(gates.sum(axis=-1), 1.0, atol=1e-6)


class LayerSuite:
    """Checks every layer must pass. Subclasses set the class attributes."""

    layer_class: type
    # Constructor arguments of the layer under test (keep dims tiny).
    layer_kwargs: dict = {}
    input_dim: int = 3
    # Shapes (without the batch) of a layer's inputs, one per input; a layer
    # with several (TargetAttention: query and keys) is called with a list.
    # Default: one input of shape (input_dim,).
    input_shapes: list[tuple[int, ...]] | None = None
    batch_size: int = 4
    # {output key: shape}; a layer returning one tensor has the key "output".
    expected_output_shapes: dict[str, tuple[int, ...]] = {}
    # Trainable weights after `build`, stated by hand in each test file.
    expected_num_trainable_weights: int
    # (constructor overrides, exact error message) pairs.
    bad_arguments: list[tuple[dict, str]] = []

    def pytest_generate_tests(self, metafunc):
        if "bad_case" in metafunc.fixturenames:
            cases = metafunc.cls.bad_arguments
            ids = [",".join(f"{k}={v!r}" for k, v in kw.items()) for kw, _ in cases]
            metafunc.parametrize("bad_case", cases, ids=ids)

    @pytest.fixture(autouse=True)
    def _seed_everything(self):
        tf.keras.utils.set_random_seed(0)

    def make_layer(self, **overrides) -> tf.keras.layers.Layer:
        return self.layer_class(**{**self.layer_kwargs, **overrides})

    def example_shapes(self) -> list[tuple[int, ...]]:
        return list(self.input_shapes or [(self.input_dim,)])

    @staticmethod
    def pack(items: list):
        """One input as itself, several as a list (``layer([query, keys])``)."""
        return items[0] if len(items) == 1 else list(items)

    def inputs(self, seed: int = 0):
        """Random inputs: a tensor, or a list of tensors for several inputs."""
        rng = np.random.default_rng(seed)
        shapes = [(self.batch_size, *shape) for shape in self.example_shapes()]
        return self.pack(
            [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        )

    def build_shape(self):
        return self.pack([(None, *shape) for shape in self.example_shapes()])

    def call_kwargs(self) -> dict[str, tf.Tensor]:
        """Tensor call arguments besides the inputs (e.g. TargetAttention's mask)."""
        return {}

    def run_layer(self, layer, inputs=None, **kwargs):
        """``layer(inputs, **call_kwargs, **kwargs)``; default inputs ``inputs()``."""
        inputs = self.inputs() if inputs is None else inputs
        return layer(inputs, **self.call_kwargs(), **kwargs)

    def distinct_groups(self, layer) -> dict[str, dict[str, np.ndarray]]:
        """Groups of sublayers (name -> flat kernels) that must start different."""
        raise NotImplementedError

    def built_layer(self, **overrides):
        layer = self.make_layer(**overrides)
        layer.build(self.build_shape())
        return layer

    # -- the checks ---------------------------------------------------------

    def test_exported_and_registered(self):
        name = self.layer_class.__name__
        assert getattr(mtrec.layers, name) is self.layer_class
        assert name in mtrec.layers.__all__
        registered = tf.keras.utils.get_registered_object(f"mtrec>{name}")
        assert registered is self.layer_class

    def test_output_shapes(self):
        outputs = as_dict(self.run_layer(self.make_layer()))
        shapes = {k: tuple(v.shape) for k, v in outputs.items()}
        assert shapes == self.expected_output_shapes

    def test_trainable_weight_count_after_build(self):
        layer = self.built_layer()
        assert layer.built
        assert len(layer.trainable_weights) == self.expected_num_trainable_weights
        # Calling must not create further weights.
        self.run_layer(layer)
        assert len(layer.trainable_weights) == self.expected_num_trainable_weights

    def test_get_config_round_trip(self):
        layer = self.make_layer()
        expected = self.run_layer(layer)
        config = layer.get_config()
        params = inspect.signature(self.layer_class.__init__).parameters
        arguments = {p for p in params if p not in ("self", "kwargs")}
        assert arguments <= config.keys(), arguments - config.keys()

        clone = self.layer_class.from_config(config)
        assert clone.get_config() == config
        clone.build(self.build_shape())
        clone.set_weights(layer.get_weights())
        assert_outputs_close(self.run_layer(clone), expected, atol=0.0)

    @pytest.mark.parametrize("save_format", ["tf", "keras"])
    def test_save_and_load_give_identical_outputs(self, tmp_path, save_format):
        inputs = [tf.keras.Input(shape) for shape in self.example_shapes()]
        kwargs = {
            key: tf.keras.Input(value.shape[1:], dtype=value.dtype)
            for key, value in self.call_kwargs().items()
        }
        outputs = self.make_layer()(self.pack(inputs), **kwargs)
        model = tf.keras.Model(self.pack([*inputs, *kwargs.values()]), outputs)
        tensors = self.inputs()
        tensors = tensors if isinstance(tensors, list) else [tensors]
        data = self.pack([*tensors, *self.call_kwargs().values()])
        expected = model(data)
        if save_format == "tf":
            path = str(tmp_path / "model")
            model.save(path, save_format="tf")
        else:
            path = str(tmp_path / "model.keras")
            model.save(path)
        loaded = tf.keras.models.load_model(path)
        # Revived from the registered class, not as a generic restored layer.
        assert isinstance(loaded.layers[-1], self.layer_class)
        assert_outputs_close(loaded(data), expected, atol=1e-6)

    def test_one_sgd_step_changes_every_weight(self):
        layer = self.make_layer()
        x = self.inputs()
        rng = np.random.default_rng(1)
        shapes = {k: v.shape for k, v in as_dict(self.run_layer(layer, x)).items()}
        # Random targets: a plain sum would give softmax gates zero gradient.
        targets = {k: rng.normal(size=s).astype("float32") for k, s in shapes.items()}
        weights = layer.trainable_weights
        with tf.GradientTape() as tape:
            outputs = as_dict(self.run_layer(layer, x, training=True))
            loss = tf.add_n([tf.reduce_sum(outputs[k] * targets[k]) for k in targets])
        grads = tape.gradient(loss, weights)
        no_gradient = [
            f"{i}:{w.name}"
            for i, (w, g) in enumerate(zip(weights, grads))
            if g is None or not np.any(np.asarray(g))
        ]
        assert not no_gradient, f"weights without gradient: {no_gradient}"

        before = [w.numpy() for w in weights]
        tf.keras.optimizers.SGD(learning_rate=0.1).apply_gradients(zip(grads, weights))
        unchanged = [
            f"{i}:{w.name}"
            for i, (w, b) in enumerate(zip(weights, before))
            if np.array_equal(w.numpy(), b)
        ]
        assert not unchanged, f"weights unchanged by the step: {unchanged}"

    def test_bad_arguments_raise(self, bad_case):
        overrides, message = bad_case
        with pytest.raises(ValueError, match=re.escape(message)):
            self.make_layer(**overrides)

    @pytest.mark.parametrize("value, message", BAD_UNITS, ids=repr)
    def test_units_must_be_positive_ints(self, value, message):
        # Every hidden-size argument (`units`, `*_units`): not truncated
        # (2.7 -> 2), not split ("64" -> [6, 4]), no zero, no bool.
        params = inspect.signature(self.layer_class.__init__).parameters
        names = [p for p in params if p == "units" or p.endswith("_units")]
        for name in names:
            with pytest.raises(ValueError, match=re.escape(message.format(name))):
                self.make_layer(**{name: value})

    @pytest.mark.parametrize(
        "name, message",
        [
            ("activation", "an activation name, config or callable"),
            ("kernel_initializer", "an initializer name, config or instance"),
        ],
    )
    def test_activation_and_initializer_are_resolved_or_refused(self, name, message):
        params = inspect.signature(self.layer_class.__init__).parameters
        if name in params:
            expected = f"`{name}` must be {message}. Received: `{name}='nope'`"
            with pytest.raises(ValueError, match=re.escape(expected)):
                self.make_layer(**{name: "nope"})

    def test_sublayers_start_different(self):
        groups = self.distinct_groups(self.built_layer())
        assert groups
        for group in groups.values():
            assert_pairwise_distinct(group)

    def test_seeded_initializer_is_reproducible_and_distinct(self):
        a = self.built_layer(kernel_initializer=SEEDED_INITIALIZER)
        b = self.built_layer(kernel_initializer=SEEDED_INITIALIZER)
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)
        for group in self.distinct_groups(a).values():
            assert_pairwise_distinct(group)
        # A different seed gives different weights.
        other = {"class_name": "GlorotUniform", "config": {"seed": 2}}
        c = self.built_layer(kernel_initializer=other)
        assert not np.allclose(flat_kernels(a), flat_kernels(c))

    def test_dropout_only_active_in_training(self):
        x = self.inputs()
        params = inspect.signature(self.layer_class.__init__).parameters
        if "dropout" not in params:
            # No dropout (Gate, TargetAttention): training mode changes nothing.
            layer = self.make_layer()
            assert_outputs_close(
                self.run_layer(layer, x, training=True),
                self.run_layer(layer, x, training=False),
                atol=0.0,
            )
        else:
            self.check_dropout(x)

    def check_dropout(self, x):
        layer = self.make_layer(dropout=0.5)
        without = self.make_layer(dropout=0.0)
        inference = self.run_layer(layer, x, training=False)
        without.build(self.build_shape())
        without.set_weights(layer.get_weights())
        # Inference (explicit or default) ignores dropout entirely.
        assert_outputs_close(inference, self.run_layer(without, x), atol=0.0)
        assert_outputs_close(self.run_layer(layer, x), inference, atol=0.0)
        trained = to_numpy(self.run_layer(layer, x, training=True))
        assert any(
            not np.allclose(trained[k], v) for k, v in to_numpy(inference).items()
        )


class GatedLayerSuite(LayerSuite):
    """Adds the gate checks of the expert mixtures (MMoE, OMoE, CGC, PLE)."""

    # {gate key: number of experts that gate mixes}.
    expected_gate_widths: dict[str, int] = {}

    def test_gates_are_softmax_weights(self):
        _, gates = self.make_layer()(self.inputs(), return_gates=True)
        assert set(gates) == set(self.expected_gate_widths)
        for key, width in self.expected_gate_widths.items():
            assert gates[key].shape == (self.batch_size, width), key
            assert_softmax_rows(gates[key], width)

    def test_return_gates_keeps_outputs(self):
        layer = self.make_layer()
        outputs, _ = layer(self.inputs(), return_gates=True)
        assert_outputs_close(outputs, layer(self.inputs()), atol=0.0)


# -- numpy reference implementations (relu, no batch norm) -------------------


def np_dense_stack(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """``relu(x W + b)`` for each ``(W, b)`` pair in ``weights``."""
    for kernel, bias in zip(weights[::2], weights[1::2], strict=True):
        x = np.maximum(x @ kernel + bias, 0.0)
    return x


def np_softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def np_expert(mlp: tf.keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    return np_dense_stack(mlp.get_weights(), x)


def np_gate(gate: tf.keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    """``softmax(W MLP(x) + b)`` from a ``Gate``'s weights (MLP first, then W, b)."""
    weights = gate.get_weights()
    hidden = np_dense_stack(weights[:-2], x)
    return np_softmax(hidden @ weights[-2] + weights[-1])


def np_mix(gates: np.ndarray, experts: list[np.ndarray]) -> np.ndarray:
    """``sum_i gates[:, i] * experts[i]``."""
    return sum(gates[:, i : i + 1] * e for i, e in enumerate(experts))


def expert_weights(experts: tf.keras.layers.Layer, i: int) -> list[np.ndarray]:
    """Expert ``i``'s ``[W_1, b_1, .., W_L, b_L]`` (an MLP's order) in an ``Experts``.

    ``kernel_0`` holds expert ``i`` in columns ``i * units[0] ..``, deeper
    kernels and biases at index ``i`` of their first axis.
    """
    weights = experts.get_weights()
    width = experts.units[0]
    columns = slice(i * width, (i + 1) * width)
    out = [weights[0][:, columns], weights[1][columns]]
    for kernel, bias in zip(weights[2::2], weights[3::2], strict=True):
        out += [kernel[i], bias[i]]
    return out


def set_expert_weights(
    experts: tf.keras.layers.Layer, i: int, weights: list[np.ndarray]
) -> None:
    """Sets expert ``i`` of an ``Experts`` from ``[W_1, b_1, ..]`` (MLP order)."""
    stacked = experts.get_weights()
    width = experts.units[0]
    columns = slice(i * width, (i + 1) * width)
    stacked[0][:, columns] = weights[0]
    stacked[1][columns] = weights[1]
    for depth in range(1, len(experts.units)):
        stacked[2 * depth][i] = weights[2 * depth]
        stacked[2 * depth + 1][i] = weights[2 * depth + 1]
    experts.set_weights(stacked)


def expert_kernels(experts: tf.keras.layers.Layer) -> dict[str, np.ndarray]:
    """``{f"expert_{i}": expert i's kernels, raveled}`` of an ``Experts``."""
    return {
        f"expert_{i}": np.concatenate(
            [w.ravel() for w in expert_weights(experts, i)[::2]]
        )
        for i in range(experts.num_experts)
    }


def np_experts(experts: tf.keras.layers.Layer, x: np.ndarray) -> list[np.ndarray]:
    """Each expert of an ``Experts`` on ``x``, from its slices of the weights."""
    return [
        np_dense_stack(expert_weights(experts, i), np.asarray(x))
        for i in range(experts.num_experts)
    ]
