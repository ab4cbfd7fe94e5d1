"""The random forest's own accumulation of its trees is scikit-learn's predict_proba bit for bit,
at the live actor's batch sizes and at the walk-forward's."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from models.zoo.forest import RandomForestModel, forest_probability
from tests.models.test_zoo import synthetic_panel


@pytest.fixture(scope="module")
def forest() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3_000, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 3] + rng.standard_normal(3_000) > 0).astype(np.int8)
    model = RandomForestClassifier(n_estimators=40, max_depth=10, min_samples_leaf=3, max_features=0.5,
                                   n_jobs=1, random_state=0).fit(X, y)
    return model, rng.standard_normal((5_000, 12)).astype(np.float32)


@pytest.mark.parametrize("n_rows", [1, 2, 50, 5_000])
def test_the_trees_summed_in_order_equal_scikit_learn_bit_for_bit(forest, n_rows) -> None:
    model, X = forest
    expected = model.predict_proba(X[:n_rows])
    got = forest_probability(model, X[:n_rows])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)  # exact: no tolerance


def test_float64_and_strided_rows_read_as_scikit_learn_reads_them(forest) -> None:
    model, X = forest
    rows = X[::7].astype(np.float64)  # converted to float32 by both, a fresh contiguous copy
    np.testing.assert_array_equal(forest_probability(model, rows), model.predict_proba(rows))


def test_the_model_predicts_through_it_with_scikit_learn_s_bits() -> None:
    panel = synthetic_panel(n_symbols=2, n_bars=1_500, strength=0.5, seed=1)
    usable = panel.usable_rows(require_label=True)
    model = RandomForestModel({"n_estimators": 15, "n_jobs": 1})
    model.fit(panel, usable[:1_000], seed=0)
    rows = usable[1_000:]
    expected = model._forest.predict_proba(panel.X[rows])[:, 1]
    np.testing.assert_array_equal(model.predict_proba(panel, rows), expected)
    np.testing.assert_array_equal(model.predict_proba(panel, rows[:50]), expected[:50])
