"""Panel bookkeeping and the honesty of every model kind.

The key tests plant a signal of known strength in synthetic, time-ordered multi-symbol data
and require each model to find it out of sample, then replace the labels with coin flips and
require out-of-sample AUC to stay at 0.5: a model (or a leaky pipeline) that "finds" signal in
noise fails here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter
from sklearn.metrics import roc_auc_score

from models.dataset import Panel
from models.zoo import MODEL_KINDS, build_model, load_model, model_class
from models.zoo.base import SignalModel
from models.zoo.holdout import time_ordered_holdout

BAR_NS = 60_000_000_000
WARMUP = 20
KINDS = sorted(MODEL_KINDS)
SEQUENCE_KINDS = ("cnn", "lstm", "transformer")
# Tiny, fast settings per kind for the mechanics (persistence, determinism, misuse); the CNN
# reads every feature of the synthetic panels (its default list names the real features).
QUICK = {
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
    "random_forest": {"n_estimators": 10},
    "svm": {"max_train_rows": 300, "importance_sample": 64},
    "mlp": {"epochs": 2, "max_train_rows": 2000, "importance_sample": 64},
    "lstm": {"seq_len": 10, "hidden_sizes": [8], "epochs": 1, "max_train_rows": 2000,
             "importance_sample": 64},
    "transformer": {"seq_len": 10, "d_model": 8, "epochs": 1, "max_train_rows": 2000,
                    "importance_sample": 64},
    "cnn": {"seq_len": 10, "features": [], "channels": [4, 8], "dense": 8, "epochs": 1,
            "max_train_rows": 2000, "importance_sample": 64},
}
# Enough capacity to learn a planted signal, still seconds per fit on 2 cores.
HONEST = {
    "lstm": {"seq_len": 20, "max_train_rows": 8000},
    "transformer": {"seq_len": 20, "max_train_rows": 8000},
    "cnn": {"seq_len": 20, "features": [], "max_train_rows": 8000},
    "svm": {"max_train_rows": 1500},
}
LAGGED_LSTM = {"max_train_rows": 20_000, "epochs": 4, "patience": 2}


def synthetic_panel(
    *,
    n_symbols: int = 3,
    n_bars: int = 20_000,
    n_features: int = 8,
    lag: int = 0,
    strength: float = 1.0,
    phi: float = 0.5,
    noise: bool = False,
    seed: int = 0,
) -> Panel:
    """Symbols on a shared minute grid; features are AR(1) noise with coefficient ``phi``.

    ``y[t] = 1{strength * (x0[t-lag] - 0.5 * x1[t-lag]) + logistic noise > 0}``, so the signal
    strength (and the oracle AUC) is known; ``noise=True`` replaces y with fair coin flips.
    The first ``WARMUP`` rows of each symbol have NaN features, like indicator warm-up.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for code in range(n_symbols):
        X = lfilter([1.0], [1.0, -phi], rng.standard_normal((n_bars, n_features)), axis=0)
        y = np.full(n_bars, np.nan)
        driver = X[: n_bars - lag, 0] - 0.5 * X[: n_bars - lag, 1]
        y[lag:] = strength * driver + rng.logistic(size=n_bars - lag) > 0
        if noise:
            y[lag:] = rng.random(n_bars - lag) < 0.5
        X[:WARMUP] = np.nan
        parts.append(
            Panel(
                X=X,
                y=y,
                ts_ns=np.arange(n_bars, dtype=np.int64) * BAR_NS,
                symbol=np.zeros(n_bars, np.int32),
                segment_start=np.zeros(n_bars, np.int64),
                feature_names=tuple(f"f{i}" for i in range(n_features)),
                symbols=(f"SYM{code}",),
            )
        )
    return Panel.concat(parts)


def time_split(panel: Panel, seq_len: int, train_share: float = 0.6):
    """Usable labelled rows split by time: train on the first ``train_share`` of the clock."""
    rows = panel.usable_rows(seq_len, require_label=True)
    cut = np.quantile(panel.ts_ns, train_share)
    return rows[panel.ts_ns[rows] < cut], rows[panel.ts_ns[rows] >= cut]


def out_of_sample_auc(model: SignalModel, panel: Panel, seq_len: int) -> float:
    train, test = time_split(panel, seq_len)
    model.fit(panel, train, seed=7)
    return roc_auc_score(panel.y[test], model.predict_proba(panel, test))


def seq_len_of(model: SignalModel) -> int:
    return model.history_bars


# ---------------------------------------------------------------- Panel


def small_panel(n: int = 6, symbol: str = "A", start_ts: int = 0) -> Panel:
    return Panel(
        X=np.arange(2 * n, dtype=np.float32).reshape(n, 2),
        y=np.tile([1.0, 0.0], n // 2),
        ts_ns=start_ts + np.arange(n),
        symbol=np.zeros(n, np.int32),
        segment_start=np.zeros(n, np.int64),
        feature_names=("a", "b"),
        symbols=(symbol,),
    )


def test_usable_rows_respects_nan_and_segment_boundaries():
    left, right = small_panel(), small_panel(symbol="B")
    left.X[2, 1] = np.nan
    right.y[5] = np.nan
    panel = Panel.concat([left, right])
    assert panel.usable_rows(1).tolist() == [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    # Three rows of finite history, never borrowed from the previous symbol's segment.
    assert panel.usable_rows(3).tolist() == [5, 8, 9, 10, 11]
    assert panel.usable_rows(3, require_label=True).tolist() == [5, 8, 9, 10]
    with pytest.raises(ValueError, match="seq_len"):
        panel.usable_rows(0)


def test_concat_remaps_symbol_codes_and_offsets_segments():
    a, b, a_later = small_panel(symbol="A"), small_panel(symbol="B"), small_panel(start_ts=100)
    panel = Panel.concat([a, b, a_later])
    assert panel.symbols == ("A", "B")
    assert panel.symbol.tolist() == [0] * 6 + [1] * 6 + [0] * 6
    assert panel.segment_start.tolist() == [0] * 6 + [6] * 6 + [12] * 6
    with pytest.raises(ValueError, match="feature_names"):
        Panel.concat([a, Panel(**{**vars(b), "feature_names": ("a", "c")})])


def test_from_frames_selects_columns_and_converts_timestamps():
    idx = pd.date_range("2024-01-02 14:30", periods=4, freq="1min", tz="America/New_York")
    frames = {
        "AAPL": pd.DataFrame({"b": [1.0, 2, 3, 4], "a": [5.0, 6, 7, 8], "junk": 0}, index=idx),
        "MSFT": pd.DataFrame({"a": [9.0, 10], "b": [11.0, 12]}, index=idx[:2]),
    }
    panel = Panel.from_frames(frames, None, ["a", "b"])
    assert panel.X.dtype == np.float32 and panel.X.flags.c_contiguous
    assert panel.X[:, 0].tolist() == [5, 6, 7, 8, 9, 10]
    assert panel.ts_ns[0] == pd.Timestamp("2024-01-02 19:30", tz="UTC").value
    assert panel.segment_start.tolist() == [0, 0, 0, 0, 4, 4]
    assert panel.symbols == ("AAPL", "MSFT") and np.isnan(panel.y).all()
    labelled = Panel.from_frames(frames, {"AAPL": np.ones(4), "MSFT": np.zeros(2)}, ["b", "a"])
    assert labelled.y.tolist() == [1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="missing"):
        Panel.from_frames(frames, None, ["a", "nope"])
    with pytest.raises(ValueError, match="labels shape"):
        Panel.from_frames(frames, {"AAPL": np.ones(3), "MSFT": np.ones(2)}, ["a"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ts_ns", np.array([0, 1, 1, 3, 4, 5]), "strictly increasing"),
        ("y", np.array([1, 0, 2, 0, 1, 0]), "only 1, 0 or NaN"),
        ("segment_start", np.array([0, 0, 1, 1, 1, 1]), "first row index"),
        ("symbol", np.array([0, 0, 0, 3, 0, 0]), "symbol codes"),
    ],
)
def test_panel_rejects_malformed_arrays(field, value, message):
    with pytest.raises(ValueError, match=message):
        Panel(**{**vars(small_panel()), field: value})


# ---------------------------------------------------------------- registry of kinds


def test_build_model_names_unknown_kinds_and_params():
    assert set(MODEL_KINDS) == {
        "lightgbm", "xgboost", "random_forest", "svm", "mlp", "lstm", "transformer", "cnn"
    }
    with pytest.raises(ValueError, match="unknown model kind 'catboost'"):
        build_model("catboost", {})
    with pytest.raises(ValueError, match=r"unknown lightgbm params \['num_trees'\]"):
        build_model("lightgbm", {"num_trees": 10})
    model = build_model("xgboost", {"max_depth": 2}, name="xgb_small")
    assert (model.name, model.kind, model.params["max_depth"]) == ("xgb_small", "xgboost", 2)


def test_time_ordered_holdout_uses_latest_timestamps_not_last_symbol():
    panel = synthetic_panel(n_bars=100)
    rows = np.arange(len(panel))
    early, late = time_ordered_holdout(panel.ts_ns, rows, 0.2)
    assert len(late) == 60 and panel.ts_ns[late].min() >= panel.ts_ns[early].max()
    assert set(panel.symbol[late]) == {0, 1, 2}


# ---------------------------------------------------------------- honesty: signal and noise


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_finds_planted_signal(kind):
    # y depends on the row's own x0 - 0.5 x1 (oracle AUC 0.78): every kind, tabular or
    # sequence, must find it out of sample, and rank the driving feature first.
    model = build_model(kind, HONEST.get(kind, {}))
    auc = out_of_sample_auc(model, synthetic_panel(lag=0, phi=0.5), seq_len_of(model))
    assert auc > 0.55, auc
    importance = model.feature_importance()
    assert max(importance, key=importance.get) == "f0"
    if kind in ("lightgbm", "xgboost", "random_forest"):  # trees get close to the oracle
        assert auc > 0.75, auc
        assert sum(importance.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_lstm_finds_signal_that_lives_several_bars_back():
    # White-noise features and y driven by x[t-5]: the current row alone carries no signal,
    # so only a model that reads the sequence can score above 0.5.
    panel = synthetic_panel(lag=5, phi=0.0, strength=1.5, seed=1)
    model = build_model("lstm", LAGGED_LSTM)
    auc = out_of_sample_auc(model, panel, seq_len=60)
    assert auc > 0.62, auc  # the oracle scores 0.83 on this panel
    importance = model.feature_importance()
    assert max(importance, key=importance.get) == "f0"
    tabular = out_of_sample_auc(build_model("lightgbm", {}), panel, seq_len=1)
    assert abs(tabular - 0.5) < 0.03, tabular


@pytest.mark.parametrize("kind", KINDS)
def test_models_find_nothing_in_noise(kind):
    # Coin-flip labels: with >= 20k test rows the AUC's standard error is about 0.004, so a
    # +-0.03 band fails only for a model (or pipeline) that "finds" structure in noise.
    model = build_model(kind, HONEST.get(kind, {}))
    panel = synthetic_panel(noise=True, phi=0.5, seed=2)
    train, test = time_split(panel, seq_len_of(model))
    assert len(test) >= 20_000
    model.fit(panel, train, seed=7)
    auc = roc_auc_score(panel.y[test], model.predict_proba(panel, test))
    assert abs(auc - 0.5) < 0.03, auc


# ---------------------------------------------------------------- persistence and determinism


def quick_model(kind: str) -> SignalModel:
    return build_model(kind, QUICK[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_and_seed_determinism(kind, tmp_path):
    panel = synthetic_panel(n_bars=3_000, seed=3)
    model = quick_model(kind)
    train, test = time_split(panel, seq_len_of(model))
    model.fit(panel, train, seed=11)
    expected = model.predict_proba(panel, test)
    assert expected.dtype == np.float64 and expected.shape == test.shape
    assert ((expected > 0) & (expected < 1)).all()
    assert model.describe()["fit"] == model.fit_info and model.fit_info["train_rows"] > 0

    model.save(tmp_path / "m")
    for loaded in (load_model(tmp_path / "m"), model_class(kind).load(tmp_path / "m")):
        assert type(loaded) is type(model) and loaded.params == model.params
        np.testing.assert_array_equal(loaded.predict_proba(panel, test), expected)
        assert loaded.feature_importance() == model.feature_importance()
        assert loaded.describe() == model.describe()

    again = quick_model(kind)
    again.fit(panel, train, seed=11)
    np.testing.assert_array_equal(again.predict_proba(panel, test), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_reads_nothing_after_its_training_rows(kind):
    # Scalers, calibrations, samples and early stopping are fitted inside the training rows:
    # rewriting every later row (features and labels) changes nothing the model learnt.
    panel = synthetic_panel(n_bars=3_000, seed=4)
    model = quick_model(kind)
    train, _ = time_split(panel, seq_len_of(model))
    model.fit(panel, train, seed=5)
    expected = model.predict_proba(panel, train[-200:])
    later = panel.ts_ns > panel.ts_ns[train].max()
    rng = np.random.default_rng(0)
    panel.X[later] = rng.standard_normal((int(later.sum()), panel.X.shape[1])) * 10
    panel.y[later] = rng.random(int(later.sum())) < 0.5
    refit = quick_model(kind)
    refit.fit(panel, train, seed=5)
    np.testing.assert_array_equal(refit.predict_proba(panel, train[-200:]), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_models_refuse_misuse(kind, tmp_path):
    panel = synthetic_panel(n_bars=400)
    panel.y[-1] = np.nan  # the label horizon runs past the data
    model = quick_model(kind)
    rows = panel.usable_rows(seq_len_of(model), require_label=True)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict_proba(panel, rows)
    with pytest.raises(ValueError, match="finite labels"):
        model.fit(panel, np.arange(len(panel)), seed=0)
    model.fit(panel, rows, seed=0)
    renamed = Panel(**{**vars(panel), "feature_names": tuple(f"g{i}" for i in range(8))})
    with pytest.raises(ValueError, match="differ"):
        model.predict_proba(renamed, rows)
    with pytest.raises(IndexError):
        model.predict_proba(panel, np.array([len(panel)]))
    assert model.predict_proba(panel, np.array([], np.int64)).shape == (0,)
    model.save(tmp_path / "saved")
    other_kind = "lstm" if kind == "xgboost" else "xgboost"
    with pytest.raises(ValueError, match=f"holds a '{kind}' model"):
        model_class(other_kind).load(tmp_path / "saved")


@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_sequence_windows_never_cross_a_segment(kind):
    panel = synthetic_panel(n_bars=300)
    model = quick_model(kind)
    rows = panel.usable_rows(10, require_label=True)
    model.fit(panel, rows, seed=0)
    first_full = np.array([300 + 9])  # second symbol's first row with 10 bars of history
    before = model.predict_proba(panel, first_full)
    panel.X[:300] = 100.0  # rewrite the whole first symbol
    np.testing.assert_array_equal(model.predict_proba(panel, first_full), before)
    with pytest.raises(ValueError, match="fewer than seq_len=10"):
        model.predict_proba(panel, np.array([300 + 8]))
