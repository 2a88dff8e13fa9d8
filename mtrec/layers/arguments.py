"""A layer's constructor arguments as its ``get_config`` entries."""

import inspect

import tensorflow as tf


def constructor_config(layer: tf.keras.layers.Layer) -> dict:
    """``{argument: value}`` for every argument of ``type(layer).__init__``.

    The layer contract keeps every constructor argument as an attribute of
    the same name, resolved (an activation is a function, an initialiser an
    instance); this returns them serialised (``tf.keras.activations`` and
    ``tf.keras.initializers.serialize``, sequences as lists), so
    ``get_config`` is ``{**super().get_config(), **constructor_config(self)}``
    and ``from_config`` rebuilds the layer. An argument without its attribute
    is an error, not a missing key.

    Example:

    >>> tower = mtrec.layers.Tower(units=(4,), activation="tanh")
    >>> config = constructor_config(tower)
    >>> config["units"], config["activation"], config["kernel_initializer"]
    ([4], 'tanh', {...'class_name': 'GlorotUniform'...})
    >>> sorted(config)
    ['activation', 'dropout', 'kernel_initializer', 'l2', 'units']
    """
    config = {}
    for name, param in inspect.signature(type(layer).__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        config[name] = _serialize(getattr(layer, name))
    return config


def _serialize(value):
    if isinstance(value, tf.keras.initializers.Initializer):
        return tf.keras.initializers.serialize(value)
    if callable(value):
        return tf.keras.activations.serialize(value)
    if isinstance(value, list | tuple):
        return list(value)
    return value
