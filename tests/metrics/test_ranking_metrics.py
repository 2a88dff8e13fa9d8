"""AUC, GAUC, log loss and calibration against hand computations."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mtrec.metrics import auc
from mtrec.metrics import binary_report
from mtrec.metrics import calibration_ratio
from mtrec.metrics import expected_calibration_error
from mtrec.metrics import group_auc
from mtrec.metrics import logloss


def test_auc_matches_scikit_learn_and_a_hand_count_with_ties():
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.4, 0.4, 0.7, 0.1])
    # Pairs (pos, neg): 9 in all; 0.9 beats all 3, 0.7 beats 0.4 and 0.1 (2),
    # 0.4 beats 0.1 and ties 0.4 (1.5): (3 + 2 + 1.5) / 9.
    assert auc(labels, scores) == pytest.approx(6.5 / 9)
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = rng.random(500) + 0.3 * y
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auc(np.ones(4), np.arange(4)) is None


def test_logloss_by_hand():
    labels = np.array([1, 0, 1])
    p = np.array([0.8, 0.4, 0.5])
    expected = -(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3
    assert logloss(labels, p) == pytest.approx(expected)


def test_group_auc_weighted_and_unweighted_by_hand():
    groups = np.array(["u1"] * 4 + ["u2"] * 3 + ["u3"] * 2 + ["u4"])
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 1, 1, 0])
    scores = np.array([0.9, 0.5, 0.6, 0.2, 0.3, 0.4, 0.1, 0.5, 0.7, 0.3])
    # u1: pos {0.9, 0.2}, neg {0.5, 0.6}: 0.9 beats 2, 0.2 beats 0 -> 2/4.
    # u2: pos {0.3}, neg {0.4, 0.1}: beats 0.1 only -> 1/2.
    # u3: one class only (both positive); u4: one row. Both are skipped.
    result = group_auc(labels, scores, groups)
    assert result["gauc_groups"] == 2
    assert result["gauc_rows"] == 7
    assert result["gauc_mean"] == pytest.approx((0.5 + 0.5) / 2)
    assert result["gauc"] == pytest.approx((4 * 0.5 + 3 * 0.5) / 7)


def test_group_auc_weights_by_impressions_and_handles_ties():
    groups = np.array([1, 1, 1, 1, 2, 2])
    labels = np.array([1, 0, 0, 0, 1, 0])
    scores = np.array([0.5, 0.5, 0.1, 0.2, 0.1, 0.9])
    # group 1: the positive ties one negative, beats two -> 2.5 / 3; group 2: 0.
    result = group_auc(labels, scores, groups)
    assert result["gauc"] == pytest.approx((4 * 2.5 / 3 + 2 * 0.0) / 6)
    assert result["gauc_mean"] == pytest.approx((2.5 / 3 + 0.0) / 2)
    one, two = groups == 1, groups == 2
    assert roc_auc_score(labels[one], scores[one]) == pytest.approx(2.5 / 3)
    assert roc_auc_score(labels[two], scores[two]) == 0.0


def test_group_auc_without_a_usable_group():
    result = group_auc([1, 1], [0.2, 0.3], ["a", "b"])
    assert result == {"gauc": None, "gauc_mean": None, "gauc_groups": 0, "gauc_rows": 0}
    with pytest.raises(ValueError, match="same length"):
        group_auc([1, 0], [0.2], ["a", "a"])


def test_calibration_ratio_and_ece_by_hand():
    labels = np.array([0, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.65, 1.0])
    assert calibration_ratio(labels, p) == pytest.approx(np.mean(p) / 0.6)
    # Bins of width 0.1: [0, .1) {0.05: y 0}, [.1, .2) {0.15: y 1},
    # [.5, .6) {0.55: y 0}, [.6, .7) {0.65: y 1}, [.9, 1] {1.0: y 1}.
    expected = (0.05 + 0.85 + 0.55 + 0.35 + 0.0) / 5
    assert expected_calibration_error(labels, p) == pytest.approx(expected)
    # Two rows in one bin: |mean p - mean y| weighted by the bin's share.
    assert expected_calibration_error([0, 1], [0.31, 0.39]) == pytest.approx(0.15)
    assert expected_calibration_error([], []) is None
    assert calibration_ratio([0, 0], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="`num_bins` must be >= 1"):
        expected_calibration_error([1], [0.5], num_bins=0)


def test_binary_report_has_every_metric():
    labels = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.6, 0.4])
    report = binary_report(labels, p, groups=np.array([1, 1, 2, 2]))
    assert report["auc"] == pytest.approx(1.0)
    assert report["gauc"] == pytest.approx(1.0)
    assert report["gauc_groups"] == 2
    assert report["calibration"] == pytest.approx(p.mean() / 0.5)
    assert report["ece"] == pytest.approx(
        expected_calibration_error(labels, p), abs=1e-12
    )
    assert "gauc" not in binary_report(labels, p)


def test_building_and_training_code_does_not_import_scikit_learn():
    # scikit-learn (about 60 MB resident) loads with the first metric only.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import mtrec.features, mtrec.models, mtrec.training, mtrec.serving\n"
        "print('sklearn' in sys.modules)\n"
        "from mtrec.metrics import auc\n"
        "print(auc([0, 1, 1], [0.1, 0.9, 0.3]), 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "1.0", "True"]
