"""Build a model's variables before ``fit`` traces its training step.

A ``tf.function`` whose first trace creates variables is traced a second time
before it runs (TensorFlow lifts the variables out of the first trace, then
traces again without creating any). A Keras model built lazily creates its
layers' weights and the optimizer's slots inside the first trace of the
training step, so ``fit`` traces that step twice. :func:`build_before_fit`
creates them eagerly, from two rows of zeros shaped like the data, so the step
is traced once: ``benchmarks/deepctr_comparison.py``, census, one core, the
first-epoch overhead went 2.8 / 3.8 / 2.8 s -> 2.0 / 2.5 / 1.8 s (MMoE / PLE
/ ESMM; DeepCTR 3.2 / 3.8 / 2.4 s in the same run). The weights are the ones
the lazy build would have made (the same initializers in the same order).

Example:

>>> from mtrec.features import FeatureEmbedding
>>> layer = FeatureEmbedding(
...     [{"name": "city", "kind": "categorical", "embedding_dim": 2}],
...     vocabularies={"city": ["paris", "rome"]})
>>> model = tf.keras.Sequential([layer, tf.keras.layers.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
>>> data = tf.data.Dataset.from_tensor_slices(
...     ({"city": ["rome", "oslo"]}, [1.0, 0.0])).batch(2)
>>> build_before_fit(model, data)
True
>>> model.built, len(model.optimizer.variables) > 1
(True, True)
"""

import logging

import tensorflow as tf

logger = logging.getLogger(__name__)


def build_before_fit(model: tf.keras.Model, data) -> bool:
    """Builds ``model`` (and its optimizer) on two zero rows of ``data``'s spec.

    Only where it is safe and cheap to know the inputs without reading
    them: ``data`` is a ``tf.data.Dataset`` whose features (the element, or
    its first item) are a dict of dense ``tf.TensorSpec`` (a string is
    ``""``, a number ``0``: a missing or out-of-vocabulary value every mtrec
    feature accepts), the model is not built yet, and no distribution
    strategy is in use (its variables are made under the strategy, by
    Keras). A model built already gets the slots of its optimizer if that
    is a legacy one (no strategy in use). Otherwise nothing happens and
    Keras builds the model as usual; likewise when a layer of the user's
    refuses the zero rows (two rows, not one, so that a ``tf.squeeze`` keeps
    the batch axis): the model is then built by the first step on real rows,
    and a real error is raised there.

    Args:
      model: a compiled Keras model.
      data: what ``fit`` is given as ``x``.

    Returns:
      Whether the model was built here.
    """
    # Outside any strategy scope get_strategy() is the default strategy, which
    # is a model's own strategy unless it was made under another one.
    if model.distribute_strategy is not tf.distribute.get_strategy():
        return False
    if model.built:
        # Built by its owner (a restore, a first call) or half built by a
        # failed zero-row call: a legacy optimizer's slots only, which it
        # extends for variables created later (a new optimizer's build is
        # once only).
        _build_slots(model, legacy_only=True)
        return False
    if not isinstance(data, tf.data.Dataset):
        return False
    spec = data.element_spec
    features = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(features, dict) or not all(
        isinstance(s, tf.TensorSpec) for s in features.values()
    ):
        return False
    rows = {
        name: tf.zeros(
            [
                (2 if axis == 0 else 1) if d is None else d
                for axis, d in enumerate(s.shape)
            ],
            s.dtype,
        )
        for name, s in features.items()
    }
    try:
        model(rows, training=False)
    except Exception as error:  # noqa: BLE001 (the real rows decide)
        logger.info(
            "Building the model on zero rows failed (%s); Keras builds it in "
            "the first training step.",
            str(error).splitlines()[0],
        )
        return False
    _build_slots(model)
    return True


def _build_slots(model: tf.keras.Model, legacy_only: bool = False) -> None:
    """Creates the optimizer's slots for the model's trainable variables.

    A legacy optimizer (mtrec's default) has no public ``build``: its
    ``_create_all_weights`` is the step ``apply_gradients`` creates the slots
    with (idempotent: existing slots are kept). A new optimizer's ``build``
    unless ``legacy_only``.
    """
    build = None if legacy_only else getattr(model.optimizer, "build", None)
    if build is None:
        build = getattr(model.optimizer, "_create_all_weights", None)
    if build is not None:
        build(model.trainable_variables)
