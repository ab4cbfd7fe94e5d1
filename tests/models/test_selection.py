"""SHAP feature selection: judged inside the training window only, stable features kept.

The panel is ``tests.models.test_zoo.synthetic_panel`` (labels driven by f0 and f1) with bars
ten minutes apart so it spans enough sessions for the inner splits, plus planted columns.
"""

import dataclasses

import numpy as np
import pytest

from models.dataset import Panel
from models.selection import SelectionConfig, select_features
from tests.models.test_stacking import spaced_panel
from tests.models.test_zoo import small_panel, time_split

CONFIG = SelectionConfig(top_k=2, inner_folds=3, n_estimators=40)  # two features carry the signal


def with_column(panel: Panel, name: str, values: np.ndarray) -> Panel:
    return Panel(**{**vars(panel), "X": np.column_stack([panel.X, values]),
                    "feature_names": (*panel.feature_names, name)})


def planted_panel() -> tuple[Panel, np.ndarray, np.ndarray]:
    """f0/f1 drive the label everywhere; ``leak`` equals the label in the test split only
    (noise before it); the train and test rows of a 60/40 time split."""
    panel = spaced_panel(n_bars=4_000, phi=0.5, seed=6)
    train, test = time_split(panel, 1)
    leak = np.random.default_rng(1).standard_normal(len(panel))
    leak[test] = panel.y[test]
    return with_column(panel, "leak", leak), train, test


def test_a_feature_leaking_only_after_the_training_window_is_not_selected():
    panel, train, test = planted_panel()
    label_end = panel.ts_ns.copy()
    chosen = select_features(panel, train, label_end, CONFIG, embargo_days=1, seed=0)
    assert chosen.selected == ("f0", "f1")  # genuinely predictive in the training window
    assert chosen.shares.shape == (3, 9)
    assert (chosen.ranks[:, :2] <= 2).all()  # they lead in every inner split, the leak in none
    # The check has teeth: judged on the test rows, the leak is the first thing chosen.
    leaked = select_features(panel, test, label_end, CONFIG, embargo_days=1, seed=0)
    assert "leak" in leaked.selected
    assert leaked.ranks[:, -1].max() == 1


def test_selection_is_unchanged_by_anything_after_the_training_window():
    panel, train, test = planted_panel()
    before = select_features(panel, train, panel.ts_ns.copy(), CONFIG, embargo_days=1, seed=0)
    rewritten = Panel(**{**vars(panel), "X": panel.X.copy(), "y": panel.y.copy()})
    rewritten.X[test] = -3.0
    rewritten.y[test] = 1.0 - panel.y[test]
    after = select_features(rewritten, train, rewritten.ts_ns.copy(), CONFIG, embargo_days=1, seed=0)
    assert after.selected == before.selected
    np.testing.assert_array_equal(after.shares, before.shares)


def test_selection_summary_is_json_ready_and_top_k_is_capped():
    panel, train, _ = planted_panel()
    chosen = select_features(panel, train, panel.ts_ns.copy(), SelectionConfig(top_k=50, inner_folds=2,
                                                                                n_estimators=20), 1, seed=0)
    assert chosen.selected == panel.feature_names  # fewer features than top_k: all of them
    summary = chosen.summary()
    assert summary["selected"] == list(panel.feature_names)
    assert np.asarray(summary["shares"]).shape == (2, 9) and np.asarray(summary["ranks"]).shape == (2, 9)
    sample = summary["sample"]
    assert len(sample["features"]) == 9 and np.asarray(sample["shap"]).shape == np.asarray(sample["values"]).shape


def test_panel_select_keeps_rows_and_orders_columns_by_name():
    panel = small_panel()
    picked = panel.select(["b", "a"])
    assert picked.feature_names == ("b", "a")
    np.testing.assert_array_equal(picked.X, panel.X[:, [1, 0]])
    np.testing.assert_array_equal(picked.y, panel.y)
    ended = dataclasses.replace(panel, label_end_ns=panel.ts_ns + 5)
    np.testing.assert_array_equal(ended.select(["b"]).label_end_ns, ended.label_end_ns)  # tails still purge
    assert panel.select(("a", "b")) is panel  # already those columns: nothing copied
    with pytest.raises(ValueError, match=r"cannot select features \['c'\]"):
        panel.select(["a", "c"])
    with pytest.raises(ValueError, match="cannot select features"):
        panel.select([])
