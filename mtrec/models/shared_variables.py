"""Which of a ranker's variables its tasks share, as gradient weightings see it."""

from collections.abc import Sequence

import tensorflow as tf


def shared_layout(
    model, variables: Sequence[tf.Variable], task_grads: dict
) -> tuple[list[bool], list[int]]:
    """Which of ``variables`` are shared, and where GradNorm's ``W`` is.

    A variable is shared when it belongs to the embeddings, a cross layer
    or the backbone (``model.shared_candidates()``) and at least two tasks
    reach it (a non-``None`` gradient in ``task_grads``; an MMoE gate reached
    by one task is not shared). ``W`` is ``model.shared_layer_variables()``,
    asked for only when the weighting uses it (``uses_shared_layer``).

    Args:
      model: a ``MultiTaskRanker``.
      variables: the variables the gradients are for.
      task_grads: ``{output: one gradient (or None) per variable}``.

    Returns:
      ``(shared, shared_layer)``: one flag per variable, and the indices
      in ``variables`` of ``W``'s variables (empty if the weighting does
      not use it, or with a single task).
    """
    names = list(task_grads)
    reached = [
        sum(task_grads[k][i] is not None for k in names) for i in range(len(variables))
    ]
    index = {v.ref(): i for i, v in enumerate(variables)}
    shared = [False] * len(variables)
    for v in model.shared_candidates():
        if v.ref() in index:
            shared[index[v.ref()]] = reached[index[v.ref()]] >= 2
    layer = []
    if len(names) > 1 and getattr(model.weighting, "uses_shared_layer", False):
        layer = [
            index[v.ref()] for v in model.shared_layer_variables() if v.ref() in index
        ]
    return shared, layer
