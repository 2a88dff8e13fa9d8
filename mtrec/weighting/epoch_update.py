"""The Keras callback that feeds each epoch to the model's loss weighting."""

import tensorflow as tf


class EpochUpdate(tf.keras.callbacks.Callback):
    """Calls ``model.weighting.on_epoch_begin`` and ``on_epoch_end`` in ``fit``.

    The epoch-based strategies (``dwa``, ``lbtw``, ``dtp``) update their
    history there (``on_epoch_end`` gets the epoch logs: ``<task>_loss``,
    ``<task>_auc``, ...); the others ignore it. ``MultiTaskRanker.fit``
    attaches one, first, unless the callbacks it is given already hold one
    (``mtrec.training.callbacks.WeightingUpdate`` is a subclass), so each
    epoch is fed once and before any callback that checkpoints the model.

    Example:

    >>> callback = EpochUpdate()
    >>> isinstance(callback, tf.keras.callbacks.Callback)
    True
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.weighting.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.model.weighting.on_epoch_end(epoch, dict(logs or {}))


def with_epoch_update(callbacks):
    """``callbacks`` (a list, ``None`` or a ``CallbackList``) with an
    :class:`EpochUpdate` first, unless one is already there."""
    if isinstance(callbacks, tf.keras.callbacks.CallbackList):
        if not any(isinstance(c, EpochUpdate) for c in callbacks.callbacks):
            callbacks.callbacks.insert(0, EpochUpdate())
        return callbacks
    callbacks = list(callbacks or [])
    if any(isinstance(c, EpochUpdate) for c in callbacks):
        return callbacks
    return [EpochUpdate(), *callbacks]
