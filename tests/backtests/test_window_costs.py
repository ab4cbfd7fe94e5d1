"""Commissions and slippage through the real backtest path: ``backtests.window.run_window``
(BacktestNode, the catalog's bars, MLSignals replayed from a signal catalog, the production
fee and fill models wired from ``VenueSpec``) on known bars, with every price checked.

One session of flat bars; one long signal at 10:00 ET; the strategy enters with a market
order and flattens with another before the close (its bracket legs are never touched). With
slippage certain, both market fills are one Reg NMS Rule 612 tick against us ($0.01 at or
above $1, $0.0001 below); commissions are per share with the minimum and the 1% cap (every
price-checking strategy test elsewhere runs without slippage)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests.window import VenueSpec, WindowSpec, run_window
from catalog.instruments import equity, instrument_id
from catalog.sessions import session_minutes, trading_sessions
from catalog.store import MarketCatalog
from strategies.signals import MLSignal, signals_table

DAY = "2024-11-26"  # 14:30-21:00 UTC
SIGNAL_AT = pd.Timestamp(f"{DAY} 15:00", tz="UTC")
PER_SHARE, MINIMUM = 0.004, 1.5  # not the defaults: a value dropped on the way would show


def window(
    tmp_path: Path, price: float, cash: float, slippage: float, stored_precision: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fills, positions) of one window over flat bars at ``price``; ``stored_precision``
    writes the instrument first at that precision, as older catalogs hold it."""
    minutes = session_minutes(trading_sessions(DAY, DAY))
    bars = pd.DataFrame(index=minutes)
    bars["open"] = bars["close"] = price
    bars["high"], bars["low"] = round(price * 1.001, 4), round(price * 0.999, 4)
    bars["volume"] = 10_000_000.0
    catalog = MarketCatalog(tmp_path / "catalog")
    if stored_precision is not None:
        catalog.nautilus.write_data([equity("AAA", "TECH", price_precision=stored_precision)])
    catalog.write_bars("AAA", bars[["open", "high", "low", "close", "volume"]], sector="TECH")
    signals = MarketCatalog(tmp_path / "signals")
    signals.nautilus.write_data(catalog.instruments())
    iid = str(instrument_id("AAA"))
    signals.write_table(MLSignal, iid, signals_table(iid, ("m",), np.array([SIGNAL_AT.value]), np.array([[0.9]])))
    spec = WindowSpec(
        name="costs",
        catalog_path=str(catalog.path),
        signal_catalog_path=str(signals.path),
        instrument_ids=(iid,),
        start_ns=int(minutes[0].value) - 60_000_000_000,
        end_ns=int(minutes[-1].value),
        strategy={"instrument_ids": [iid], "weights": {"m": 1.0}, "entry_threshold": 0.65},
        venue=VenueSpec(starting_cash=cash, commission_per_share=PER_SHARE, min_commission=MINIMUM,
                        slippage_probability=slippage, seed=3),
        out_dir=str(tmp_path / "out"),
    )
    result = run_window(spec)
    fills = pd.read_parquet(result.fills_path).sort_values("ts_last")
    return fills, pd.read_parquet(result.positions_path)


def commission_of(fill: pd.Series) -> float:
    (money,) = fill["commissions"].strip("[]").split(",")
    amount, currency = money.strip(" '\"").split(" ")
    assert currency == "USD"
    return float(amount)


@pytest.mark.parametrize(
    ("price", "cash", "shares", "tick", "commission"),
    [
        # 5% of 1M at $100 = 500 shares; 500 x $0.004 = $2.00, above the $1.50 minimum.
        pytest.param(100.0, 1_000_000.0, 500, 0.01, lambda qty, px: 2.00, id="per-share"),
        # 5% of 100k at $100 = 50 shares; 50 x $0.004 = $0.20, raised to the $1.50 minimum.
        pytest.param(100.0, 100_000.0, 50, 0.01, lambda qty, px: 1.50, id="minimum"),
        # 5% of 100k at $0.30 = 16,666 shares; $66.66 per share, capped at 1% of the fill value.
        pytest.param(0.30, 100_000.0, 16_666, 0.0001, lambda qty, px: round(0.01 * qty * px, 2), id="cap"),
    ],
)
def test_market_fills_slip_one_tick_and_pay_the_configured_commission(
    tmp_path: Path, price, cash, shares, tick, commission
):
    fills, positions = window(tmp_path, price, cash, slippage=1.0)

    assert list(fills["side"]) == ["BUY", "SELL"]  # the entry, then the flatten before the close
    assert list(fills["type"]) == ["MARKET", "MARKET"]
    assert list(fills["filled_qty"].astype(float)) == [shares, shares]
    buy, sell = fills["avg_px"].astype(float)
    assert buy == pytest.approx(price + tick, abs=1e-9) and sell == pytest.approx(price - tick, abs=1e-9)
    for _, fill in fills.iterrows():
        assert commission_of(fill) == pytest.approx(commission(shares, float(fill["avg_px"])), abs=1e-9)
    (position,) = positions.itertuples()
    pnl = float(str(position.realized_pnl).split(" ")[0])
    costs = sum(commission_of(f) for _, f in fills.iterrows())
    assert pnl == pytest.approx(shares * (sell - buy) - costs, abs=0.011)


def test_without_slippage_market_fills_take_the_bar_close(tmp_path: Path):
    fills, _ = window(tmp_path, 100.0, 100_000.0, slippage=0.0)
    assert list(fills["avg_px"].astype(float)) == [100.0, 100.0]
    assert [commission_of(f) for _, f in fills.iterrows()] == [MINIMUM, MINIMUM]


def test_a_catalog_stored_at_cents_still_backtests_at_cent_ticks(tmp_path: Path):
    fills, _ = window(tmp_path, 100.0, 100_000.0, slippage=1.0, stored_precision=2)
    assert list(fills["avg_px"].astype(float)) == [100.01, 99.99]
