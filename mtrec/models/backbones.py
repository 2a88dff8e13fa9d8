"""What the ranker knows of a backbone: whether it is gated, its last shared layer.

Both are stated per backbone class here, explicitly. They belong on the
backbone layers themselves (a ``GatedBackbone`` base class and a
``shared_layer_variables()`` method of each layer); they live on the model
side until the ``mtrec.layers`` refactor can take them.
"""

import abc

import tensorflow as tf

from mtrec.layers import CGC
from mtrec.layers import PLE
from mtrec.layers import MMoE
from mtrec.layers import OMoE
from mtrec.layers import SharedBottom


class GatedBackbone(abc.ABC):
    """Marker of a backbone that mixes experts with softmax gates.

    A gated backbone's ``call(inputs, training=None, return_gates=False)``
    returns ``(outputs, gates)`` with ``return_gates=True``, ``gates`` mapping
    each gate's name to its ``(batch, num_experts)`` weights; the ranker's
    ``gate_weights`` and the gate reports read them. ``OMoE``, ``MMoE``,
    ``CGC`` and ``PLE`` are registered; a custom backbone subclasses this
    class or is registered with ``GatedBackbone.register(MyLayer)``.

    Example:

    >>> isinstance(MMoE(["ctr", "cvr"], num_experts=2), GatedBackbone)
    True
    >>> isinstance(SharedBottom(["ctr", "cvr"]), GatedBackbone)
    False
    """

    @abc.abstractmethod
    def call(self, inputs, training=None, return_gates=False):
        """``{task: (batch, d)}``, or ``(that, {gate: (batch, n)})`` with gates."""


for _gated in (OMoE, MMoE, CGC, PLE):
    GatedBackbone.register(_gated)


def _kernels(layer: tf.keras.layers.Layer) -> list[tf.Variable]:
    return [v for v in layer.trainable_variables if v.shape.rank == 2]


def _shared_experts_kernel(cgc: CGC) -> list[tf.Variable]:
    experts = getattr(cgc, "shared_experts", None)
    return [experts.kernels[-1]] if experts is not None else []


def shared_layer_variables(backbone: tf.keras.layers.Layer) -> list[tf.Variable]:
    """The variables of the backbone's last shared layer (GradNorm's ``W``).

    GradNorm (Chen et al., ICML 2018) measures each task's gradient norm on
    "the last shared layer of weights", the layer that produces the
    representation every task reads. Per backbone:

    - ``SharedBottom``: the kernel of its last dense layer (the paper's own
      hard-sharing case).
    - ``OMoE``, ``MMoE``: the last kernel of the experts, all experts together
      (one ``(num_experts, d_in, d_out)`` variable). The experts' outputs are
      the shared representation; MMoE's gates are per task, so not shared,
      and OMoE's single gate only weighs the representation (its kernel is a
      router whose gradient norm depends on the expert outputs' spread, not
      on how much a task pulls on the representation).
    - ``CGC``: the last kernel of the shared experts (the task experts belong
      to one task each; the gates are per task).
    - ``PLE``: the shared experts of its last level, as ``CGC``: the last layer
      before the per-task gates of the output level.

    An empty list means the backbone has no shared layer (``CGC``/``PLE``
    with ``num_shared_experts=0``, ``SharedBottom`` with no units); the ranker
    then uses the layer below (the last cross layer, or the embeddings). A
    backbone of another class defines ``shared_layer_variables()`` itself.

    Args:
      backbone: a built backbone layer.

    Returns:
      The variables (kernels), in a fixed order.

    Raises:
      TypeError: a backbone of another class without
        ``shared_layer_variables()``.
    """
    method = getattr(backbone, "shared_layer_variables", None)
    if callable(method):
        return list(method())
    if isinstance(backbone, SharedBottom):
        return _kernels(backbone.bottom)[-1:]
    if isinstance(backbone, (OMoE, MMoE)):
        return [backbone.experts.kernels[-1]]
    if isinstance(backbone, PLE):
        return _shared_experts_kernel(backbone.levels[-1])
    if isinstance(backbone, CGC):
        return _shared_experts_kernel(backbone)
    raise TypeError(
        f"GradNorm needs the last shared layer of backbone "
        f"{type(backbone).__name__}: give the layer a `shared_layer_variables()` "
        "method returning that layer's kernel(s). Known backbones: SharedBottom, "
        "OMoE, MMoE, CGC, PLE."
    )
