"""MLSignal survives every way it travels: msgpack (message bus), the Parquet catalog, and
catalog replay into the EnsembleStrategy through BacktestNode."""

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from backtests.window import VenueSpec, WindowSpec, run_window
from catalog.instruments import instrument_id
from catalog.store import MarketCatalog
from models.outlook import Outlook
from strategies.signals import MLSignal, signals_from_table, signals_table
from tests.strategies.conftest import Market, utc

MODELS = ("xgb", "lstm", "logit")
# Values that a lossy path (float32, text, rounding) would change.
AWKWARD = np.array(
    [
        [0.1, 1 / 3, 2 / 3],
        [np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0), 5e-324],
        [0.0, 1.0, 0.123456789012345678],
        [1e-17, 1 - 1e-16, 0.7],
    ]
)


def stamps(start: str, n: int) -> np.ndarray:
    return pd.date_range(start, periods=n, freq="1min", tz="UTC").asi8


def assert_same(signal: MLSignal, iid: str, ts: int, probabilities: np.ndarray) -> None:
    assert (
        signal.instrument_id == instrument_id(iid.split(".")[0])
        and signal.instrument_id.value == iid
    )
    assert signal.models == ",".join(MODELS)
    assert (signal.ts_event, signal.ts_init) == (ts, ts)
    assert signal.probabilities.dtype == np.float64
    assert (
        signal.probabilities.tobytes() == np.asarray(probabilities, dtype=np.float64).tobytes()
    )  # bit-exact


def query(catalog: MarketCatalog, identifiers: list[str], **bounds) -> list[MLSignal]:
    return [c.data for c in catalog.nautilus.query(MLSignal, identifiers=identifiers, **bounds)]


@pytest.fixture
def catalog(tmp_path) -> MarketCatalog:
    return MarketCatalog(tmp_path / "catalog")


def test_msgpack_round_trip_is_exact() -> None:
    ts = int(stamps("2024-11-26 14:31", 1)[0]) + 123  # keep the nanoseconds too
    for row in AWKWARD:
        signal = MLSignal(
            ts_event=ts,
            ts_init=ts,
            instrument_id=instrument_id("AAA"),
            models=",".join(MODELS),
            probabilities=row,
        )
        wire = msgspec.msgpack.encode(signal.to_dict())
        assert_same(MLSignal.from_dict(msgspec.msgpack.decode(wire)), "AAA.ALPACA", ts, row)
        assert_same(MLSignal.from_bytes(signal.to_bytes()), "AAA.ALPACA", ts, row)
    assert signal.model_names() == MODELS and signal.probability("lstm") == row[1]


def test_catalog_round_trip_is_exact(catalog) -> None:
    ts = stamps("2024-11-26 14:31", len(AWKWARD))
    catalog.write_table(MLSignal, "AAA.ALPACA", signals_table("AAA.ALPACA", MODELS, ts, AWKWARD))
    catalog.write_table(
        MLSignal, "BBB.ALPACA", signals_table("BBB.ALPACA", MODELS, ts, AWKWARD[::-1])
    )

    for iid, expected in (("AAA.ALPACA", AWKWARD), ("BBB.ALPACA", AWKWARD[::-1])):
        back = query(catalog, [iid])
        assert len(back) == len(expected)
        for signal, t, row in zip(back, ts, expected):
            assert_same(signal, iid, int(t), row)

    # Bounds are inclusive bar-close times; several instruments can be asked for at once.
    window = query(catalog, ["AAA.ALPACA", "BBB.ALPACA"], start=int(ts[1]), end=int(ts[2]))
    assert sorted((s.ts_init, s.instrument_id.value) for s in window) == [
        (ts[1], "AAA.ALPACA"),
        (ts[1], "BBB.ALPACA"),
        (ts[2], "AAA.ALPACA"),
        (ts[2], "BBB.ALPACA"),
    ]


def test_rewriting_a_range_leaves_one_copy(catalog) -> None:
    ts = stamps("2024-11-26 14:31", 8)
    first = np.full((8, 3), 0.25)
    second = np.full((8, 3), 0.75)
    table = signals_table("AAA.ALPACA", MODELS, ts[:5], first[:5])
    catalog.write_table(MLSignal, "AAA.ALPACA", table)
    catalog.write_table(MLSignal, "AAA.ALPACA", table)
    assert [s.ts_init for s in query(catalog, ["AAA.ALPACA"])] == list(ts[:5])

    # An overlapping rewrite replaces the overlap (newest wins) and keeps the rest, once each.
    catalog.write_table(
        MLSignal, "AAA.ALPACA", signals_table("AAA.ALPACA", MODELS, ts[3:], second[3:])
    )
    back = query(catalog, ["AAA.ALPACA"])
    assert [s.ts_init for s in back] == list(ts)
    assert [s.probabilities[0] for s in back] == [0.25] * 3 + [0.75] * 5


def test_table_helpers_refuse_inconsistent_input(catalog) -> None:
    ts = stamps("2024-11-26 14:31", 3)
    with pytest.raises(ValueError, match="3 probability columns for 2 models"):
        signals_table("AAA.ALPACA", ("a", "b"), ts, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not sorted"):
        catalog.write_table(
            MLSignal, "AAA.ALPACA", signals_table("AAA.ALPACA", MODELS, ts[::-1], np.zeros((3, 3)))
        )
    mixed = pa.concat_tables(
        [
            signals_table("AAA.ALPACA", ("a", "b"), ts[:1], np.zeros((1, 2))),
            signals_table("AAA.ALPACA", MODELS, ts[1:], np.zeros((2, 3))),
        ]
    )
    with pytest.raises(ValueError, match="different numbers of models"):
        signals_from_table(mixed)
    assert signals_from_table(signals_table("AAA.ALPACA", MODELS, ts[:0], np.zeros((0, 3)))) == []


def test_catalog_signals_drive_the_strategy_through_backtest_node(tmp_path) -> None:
    """Bars and signals written to a catalog replay into EnsembleStrategy via BacktestNode."""
    market = Market(["2024-11-26"], {"AAA": "TECH"})
    market.hold(
        "AAA", 101.0, "2024-11-26 15:00"
    )  # the signal's own bar closes at 101, the one before at 100
    market.bar("AAA", "2024-11-26 16:00", high=106.0)  # through the 4% target at 105.04
    catalog = MarketCatalog(tmp_path / "catalog")
    catalog.write_bars("AAA", market.frames["AAA"], sector="TECH")
    signal_ts = np.array([utc("2024-11-26 15:00").value])
    catalog.write_table(
        MLSignal,
        "AAA.ALPACA",
        signals_table("AAA.ALPACA", MODELS, signal_ts, np.array([[0.9, 0.6, 0.3]])),
    )

    result = run_window(
        WindowSpec(
            name="catalog-replay",
            catalog_path=str(catalog.path),
            signal_catalog_path=str(catalog.path),
            instrument_ids=("AAA.ALPACA",),
            start_ns=int(market.minutes[0].value),
            end_ns=int(market.minutes[-1].value),
            # (0.9 * 2 + 0.6 * 1 + 0.3 * 0) / 3 = 0.8 >= 0.65: long
            strategy={
                "instrument_ids": ["AAA.ALPACA"],
                "weights": {"xgb": 2.0, "lstm": 1.0, "logit": 0.0},
            },
            venue=VenueSpec(
                starting_cash=100_000,
                commission_per_share=0.0,
                min_commission=0.0,
                slippage_probability=0.0,
                seed=1,
            ),
            out_dir=str(tmp_path / "out"),
        )
    )

    fills = pd.read_parquet(result.fills_path).sort_values("ts_last")
    assert list(fills["type"]) == ["MARKET", "LIMIT"] and list(fills["side"]) == ["BUY", "SELL"]
    # The bar at the signal's timestamp was seen first: filled at its close, sized 5000 / 101.
    assert list(fills["avg_px"].astype(float)) == [101.0, 105.04]
    assert list(fills["filled_qty"].astype(float)) == [49.0, 49.0]
    assert result.final_balance == pytest.approx(100_000 + 49 * 4.04)


# -- the outlook ---------------------------------------------------------------------------------

OUTLOOK_FIELDS = ("decision", "confidence", "expected_return", "risk_score", "volatility", "horizon", "horizons")


def awkward_outlook() -> Outlook:
    return Outlook(
        decision=["BUY", "SELL", "HOLD", "BUY"],
        confidence=AWKWARD[:, 1].copy(),
        expected_return=np.array([1e-17, -1 / 3, np.nan, 5e-324]),
        risk_score=np.array([1, 10, 0, 4]),
        volatility=AWKWARD[:, 2].copy(),
        horizon=30,
        horizons=(1, 30, 390),
        horizon_returns=AWKWARD[::-1].copy() - 0.5,
    )


def assert_outlook(signal: MLSignal, view: Outlook, i: int) -> None:
    assert signal.decision == view.decision[i] and signal.risk_score == view.risk_score[i]
    assert (signal.horizon, signal.horizons, signal.horizon_bars()) == (30, "1,30,390", (1, 30, 390))
    for name in ("confidence", "expected_return", "volatility"):
        assert np.asarray(getattr(signal, name)).tobytes() == np.asarray(getattr(view, name)[i]).tobytes()
    assert signal.horizon_returns.tobytes() == view.horizon_returns[i].tobytes()


def test_the_outlook_travels_exactly_over_msgpack_and_the_catalog(catalog) -> None:
    view = awkward_outlook()
    ts = stamps("2024-11-26 14:31", len(AWKWARD))
    catalog.write_table(MLSignal, "AAA.ALPACA", signals_table("AAA.ALPACA", MODELS, ts, AWKWARD, view))
    stored = query(catalog, ["AAA.ALPACA"])
    assert len(stored) == len(AWKWARD)
    for i, signal in enumerate(stored):
        assert_same(signal, "AAA.ALPACA", int(ts[i]), AWKWARD[i])
        assert_outlook(signal, view, i)
        wire = msgspec.msgpack.decode(msgspec.msgpack.encode(signal.to_dict()))
        assert_outlook(MLSignal.from_dict(wire), view, i)


def test_a_catalog_written_before_the_outlook_loads_with_the_unknown_outlook(catalog) -> None:
    ts = stamps("2024-11-26 14:31", len(AWKWARD))
    table = signals_table("AAA.ALPACA", MODELS, ts, AWKWARD)
    old = table.select([c for c in table.column_names if c not in (*OUTLOOK_FIELDS, "horizon_returns")])
    catalog.write_table(MLSignal, "AAA.ALPACA", old)
    for i, signal in enumerate(query(catalog, ["AAA.ALPACA"])):
        assert_same(signal, "AAA.ALPACA", int(ts[i]), AWKWARD[i])
        assert (signal.decision, signal.risk_score, signal.horizon, signal.horizons) == ("", 0, 0, "")
        assert np.isnan([signal.confidence, signal.expected_return, signal.volatility]).all()
        assert signal.horizon_returns.shape == (0,)


def test_a_replayed_signals_volatility_sets_the_stop(tmp_path) -> None:
    """Catalog -> BacktestNode -> EnsembleStrategy with the volatility-targeted stop: the
    stored signal's volatility and horizon, not the fixed 2%, place the stop and size."""
    market = Market(["2024-11-26"], {"AAA": "TECH"})
    catalog = MarketCatalog(tmp_path / "catalog")
    catalog.write_bars("AAA", market.frames["AAA"], sector="TECH")
    signal_ts = np.array([utc("2024-11-26 15:00").value])
    view = Outlook(decision=["BUY"], confidence=np.array([0.9]), expected_return=np.array([0.004]),
                   risk_score=np.array([3]), volatility=np.array([0.0008]), horizon=25, horizons=(25,),
                   horizon_returns=np.array([[0.004]]))
    catalog.write_table(MLSignal, "AAA.ALPACA",
                        signals_table("AAA.ALPACA", MODELS, signal_ts, np.array([[0.9, 0.9, 0.9]]), view))
    result = run_window(
        WindowSpec(
            name="volatility-stop",
            catalog_path=str(catalog.path),
            signal_catalog_path=str(catalog.path),
            instrument_ids=("AAA.ALPACA",),
            start_ns=int(market.minutes[0].value),
            end_ns=int(market.minutes[-1].value),
            strategy={"instrument_ids": ["AAA.ALPACA"], "weights": dict.fromkeys(MODELS, 1.0),
                      "risk": {"risk_per_trade": 0.0005, "stop_volatility_multiple": 2.5}},
            venue=VenueSpec(starting_cash=100_000, commission_per_share=0.0, min_commission=0.0,
                            slippage_probability=0.0, seed=1),
            out_dir=str(tmp_path / "out"),
        )
    )
    orders = pd.read_parquet(result.orders_path)
    # 2.5 x 0.0008 x sqrt(25) = 1%: stop 99.00 under the 100.00 entry; 50 USD / 1.00 = 50 shares.
    stop = orders[orders["tags"].str.contains("STOP_LOSS")]
    assert stop["trigger_price"].astype(float).tolist() == [99.0]
    assert orders[orders["tags"].str.contains("ENTRY")]["quantity"].astype(float).tolist() == [50.0]
