"""The seams between the ranker, its subclasses and the loss weighting."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding
from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.weighting import WEIGHTINGS
from mtrec.weighting import DynamicWeightAverage
from mtrec.weighting import FixedWeighting
from mtrec.weighting import LossWeighting
from mtrec.weighting import build_weighting

TASKS = [Task("ctr", "click"), Task("cvr", "conversion", weight=2.0)]


def _features():
    return FeatureEmbedding(
        [{"name": "city", "kind": "categorical", "embedding_dim": 4}],
        vocabularies={"city": ["a", "b"]},
    )


def _ranker(**kwargs):
    return MultiTaskRanker(
        _features(), SharedBottom(["ctr", "cvr"], units=[4]), TASKS, **kwargs
    )


def _dataset():
    data = {
        "city": tf.constant(["a", "b", "a", "b"] * 8),
        "click": tf.constant([1.0, 0.0, 1.0, 0.0] * 8),
        "conversion": tf.constant([1.0, 0.0, 0.0, 0.0] * 8),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(32)


class _LateSubclass(MultiTaskRanker):
    """Prepares its state after ``super().__init__``, as subclasses should."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = True

    def supervised_tasks(self):
        assert self.prepared
        return super().supervised_tasks()

    @property
    def tower_tasks(self):
        assert self.prepared
        return super().tower_tasks

    @property
    def logit_outputs(self):
        assert self.prepared
        return super().logit_outputs


def test_the_constructor_calls_no_overridable_method():
    model = _LateSubclass(_features(), SharedBottom(["ctr", "cvr"]), TASKS)
    assert list(model.supervised_tasks()) == ["ctr", "cvr"]
    assert model.logit_outputs == {"ctr", "cvr"}


def test_esmm_owns_its_config_keys():
    config = {"ctr_task": Task("ctr", "click").to_dict(), "extra_tasks": []}
    assert MultiTaskRanker._deserialize_arguments(config) == config
    own = ESMM._deserialize_arguments(config)
    assert own["ctr_task"] == Task("ctr", "click") and own["extra_tasks"] == []
    esmm = ESMM(
        _features(),
        SharedBottom(["ctr", "cvr"]),
        Task("ctr", "click"),
        Task("cvr", "conversion", condition="click"),
    )
    assert "supervised" not in esmm.get_config() and "tasks" not in esmm.get_config()
    assert "supervised" in _ranker().get_config()


@pytest.mark.parametrize(
    "weighting, cls",
    [
        ("dwa", DynamicWeightAverage),
        (None, FixedWeighting),
        (DynamicWeightAverage(["ctr", "cvr"], temperature=3.0), DynamicWeightAverage),
    ],
)
def test_weighting_is_an_instance_or_a_registry_name(weighting, cls):
    model = _ranker(weighting=weighting)
    assert type(model.weighting) is cls
    assert model.weighting.task_names == ["ctr", "cvr"]
    if weighting is None or isinstance(weighting, str):
        # Built for the tasks: Task.weight multiplied in.
        assert model.weighting.task_weight == {"ctr": 1.0, "cvr": 2.0}
    clone = MultiTaskRanker.from_config(model.get_config())
    assert clone.weighting.get_config() == model.weighting.get_config()


def test_bad_weighting_values():
    with pytest.raises(ValueError, match="unknown loss weighting 'nope'"):
        _ranker(weighting="nope")
    with pytest.raises(ValueError, match=r"Received: `weighting=3`"):
        _ranker(weighting=3)


def test_a_weighting_function_is_refused():
    """The weighting is an instance or a registry name, not a callback."""
    with pytest.raises(ValueError, match=r"`weighting` must be a LossWeighting"):
        _ranker(weighting=lambda tasks: build_weighting("dwa", tasks))


def test_one_source_of_truth_for_the_current_weights():
    """No strategy overrides ``task_weights``: all read ``last_weights``."""
    for name, cls in WEIGHTINGS.items():
        assert cls.task_weights is LossWeighting.task_weights, name


@pytest.mark.parametrize("name", ["grad_norm_static", "fixed", "dwa"])
def test_the_weighting_records_its_own_weights_in_training(name):
    model = _ranker(weighting=name)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = model.fit(_dataset(), epochs=1, verbose=0).history
    reported = [history["weight_ctr"][0], history["weight_cvr"][0]]
    current = [float(w) for w in model.weighting.task_weights().values()]
    np.testing.assert_allclose(current, reported, rtol=1e-6)
