"""The classifier metric against known cases: equal samples, shifted Gaussians (optimal AUC and JSD by numerical
integration), a generator that replays its training data, and the pieces against second methods."""

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import mannwhitneyu, norm

from caloray.stats.classifier import (
    ClassifierConfig,
    apply_calibration,
    auc,
    calibration_curve,
    classifier_metric,
    isotonic_calibration,
    jsd_bits,
    split_rows,
)

#: Small and quick: the low-dimensional cases need no wide network.
SMALL = ClassifierConfig(hidden=(32, 32), epochs=10, patience=3, batch_size=1024, n_bootstrap=100)


def gaussian_jsd_bits(delta: float) -> float:
    """JSD(N(0,1), N(δ,1)) in bits by numerical integration."""
    def integrand(x: float) -> float:
        p, q = norm.pdf(x), norm.pdf(x, delta)
        m = 0.5 * (p + q)
        return 0.5 * p * np.log2(p / m) + 0.5 * q * np.log2(q / m)

    return quad(integrand, -15.0, 15.0 + delta, limit=200)[0]


def test_same_distribution_gives_auc_one_half_within_error():
    rng = np.random.default_rng(3)
    result = classifier_metric(rng.normal(size=(10_000, 3)), rng.normal(size=(10_000, 3)), SMALL)
    assert abs(result.auc - 0.5) < 2 * result.auc_err
    assert abs(result.jsd) < 2 * result.jsd_err + 1e-3
    # the bootstrap error against the Mann–Whitney null variance (n + m + 1) / (12 n m) of the AUC
    n, m = result.n_test
    assert result.auc_err == pytest.approx(np.sqrt((n + m + 1) / (12 * n * m)), rel=0.3)


@pytest.mark.parametrize("delta", [0.5, 1.0])
def test_shifted_gaussians_reach_the_optimal_auc_and_the_true_jsd(delta):
    rng = np.random.default_rng(int(delta * 10))
    n = 50_000
    result = classifier_metric(rng.normal(size=(n, 1)), rng.normal(delta, 1.0, size=(n, 1)), SMALL)
    assert result.auc == pytest.approx(norm.cdf(delta / np.sqrt(2.0)), abs=0.01)
    truth = gaussian_jsd_bits(delta)  # 0.0437 bits for δ = 0.5, 0.1607 for δ = 1
    assert abs(result.jsd - truth) < 3 * result.jsd_err
    # calibrated on the validation split, checked on the held-out test split: near the diagonal where populated
    curve = result.calibrated_test
    full = curve.counts > 500
    binomial = np.sqrt(curve.observed[full] * (1 - curve.observed[full]) / curve.counts[full])
    assert np.all(np.abs(curve.observed[full] - curve.predicted[full]) < 4 * binomial + 0.01)


def test_a_generator_that_replays_its_training_data_is_not_rewarded():
    rng = np.random.default_rng(5)
    training = rng.normal(size=(200, 8))  # what the "generator" saw; it emits copies of these rows
    copies = training[rng.integers(0, len(training), 5000)]
    held_out = rng.normal(size=(5000, 8))  # the metric's reference: never seen by the generator
    config = ClassifierConfig(hidden=(64, 64), epochs=30, patience=5, n_bootstrap=50)
    honest = classifier_metric(held_out, copies, config)
    assert honest.auc - 0.5 > 10 * honest.auc_err
    # the same copies judged against the training data itself would look perfect: why the reference is held out
    leaked = classifier_metric(training[rng.integers(0, len(training), 5000)], copies, config)
    assert abs(leaked.auc - 0.5) < 3 * leaked.auc_err


def test_fixed_seed_is_reproducible_and_leaves_the_global_rng_alone():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 4)), rng.normal(0.3, 1.0, size=(600, 4))
    config = ClassifierConfig(hidden=(16,), epochs=3, n_bootstrap=20, seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = classifier_metric(x, y, config)
    assert torch.equal(torch.get_rng_state(), before)
    second = classifier_metric(x, y, config)
    assert first.summary() == second.summary()
    other = classifier_metric(x, y, ClassifierConfig(hidden=(16,), epochs=3, n_bootstrap=20, seed=8))
    assert other.summary() != first.summary()


def test_split_rows_is_a_partition_with_the_requested_sizes():
    train, val, test = split_rows(1000, (0.6, 0.2, 0.2), np.random.default_rng(0))
    assert (len(train), len(val), len(test)) == (600, 200, 200)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(1000))
    assert [len(p) for p in split_rows(3, (3.0, 1.0, 1.0), np.random.default_rng(0))] == [1, 1, 1]
    with pytest.raises(ValueError, match="at least 3 rows"):
        split_rows(2, (0.6, 0.2, 0.2), np.random.default_rng(0))


def test_auc_equals_the_mann_whitney_statistic_with_ties():
    rng = np.random.default_rng(1)
    ref, cand = rng.integers(0, 20, 300).astype(float), rng.integers(3, 25, 200).astype(float)  # many ties
    u = mannwhitneyu(cand, ref, alternative="two-sided").statistic
    assert auc(ref, cand) == pytest.approx(u / (len(ref) * len(cand)), rel=1e-12)


def test_isotonic_calibration_pools_adjacent_violators():
    # labels 0 1 0 1 1 by increasing score: the violating pair (1, 0) at scores 2, 3 is pooled
    knots, values = isotonic_calibration(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0, 1, 0, 1, 1]))
    assert np.array_equal(knots, [1, 2, 3, 4, 5])
    # weights 0.5/2 for class 0 and 0.5/3 for class 1: the pooled block {2, 3} is (w1·1 + w0·0) / (w1 + w0) = 0.4
    assert values == pytest.approx([0.0, 0.4, 0.4, 1.0, 1.0])
    assert apply_calibration(np.array([0.0, 2.5, 9.0]), knots, values) == pytest.approx([0.0, 0.4, 1.0])


def test_jsd_estimator_limits_and_calibration_curve():
    assert jsd_bits(np.full(10, 0.5), np.full(10, 0.5)) == pytest.approx(0.0)
    assert jsd_bits(np.full(10, 1e-12), np.full(10, 1 - 1e-12)) == pytest.approx(1.0, abs=1e-9)
    curve = calibration_curve(np.array([0.05, 0.15, 0.95, 0.95]), np.array([0, 0, 1, 0]), n_bins=10)
    assert curve.counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert curve.observed[9] == pytest.approx((0.5 / 1) / (0.5 / 1 + 0.5 / 3))  # class-weighted fraction


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="candidate contains NaN"):
        classifier_metric(np.zeros((10, 2)), np.full((10, 2), np.nan), SMALL)
    with pytest.raises(ValueError, match="d=2 but candidate has d=3"):
        classifier_metric(np.zeros((10, 2)), np.zeros((10, 3)), SMALL)
    with pytest.raises(ValueError, match="dropout"):
        ClassifierConfig(dropout=1.0)
