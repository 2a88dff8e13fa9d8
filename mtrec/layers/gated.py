"""``GatedBackbone``: the interface of backbones that mix experts with gates."""

import abc


class GatedBackbone(abc.ABC):
    """A backbone that mixes experts with softmax gates.

    Its ``call(inputs, training=None, return_gates=False)`` returns
    ``(outputs, gates)`` with ``return_gates=True``, ``gates`` mapping each
    gate's name to its ``(batch, num_experts)`` weights; the ranker's
    ``gate_weights`` and the gate reports read them. Every
    :class:`~mtrec.layers.MixtureOfExperts` (``OMoE``, ``MMoE``, ``CGC``,
    ``PLE``) is one; a custom backbone subclasses this class or is registered
    with ``GatedBackbone.register(MyLayer)``.

    Example:

    >>> from mtrec.layers import MMoE, SharedBottom
    >>> isinstance(MMoE(["ctr", "cvr"], num_experts=2), GatedBackbone)
    True
    >>> isinstance(SharedBottom(["ctr", "cvr"]), GatedBackbone)
    False
    """

    @abc.abstractmethod
    def call(self, inputs, training=None, return_gates=False):
        """``{task: (batch, d)}``, or ``(that, {gate: (batch, n)})`` with gates."""
