"""Whether the graph being built is compiled by XLA (``jit_compile``)."""

import tensorflow as tf


def in_xla_context() -> bool:
    """Whether the graph being built is compiled by XLA (``jit_compile``).

    TensorFlow has no public test for it; this is the check tf-keras makes
    (``GraphOrParentsInXlaContext``): an XLA control-flow context on the
    graph or an outer graph.
    """
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        context = graph._get_control_flow_context()  # noqa: SLF001
        while context is not None:
            if context.IsXLAContext():
                return True
            context = context.outer_context
        graph = getattr(graph, "outer_graph", None)
    return False
