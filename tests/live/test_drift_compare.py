"""The comparison of a live day with its backtest, over records: each kind of difference gets
the reason the venue or the feed explains, and only what nothing explains is flagged."""

import dataclasses
from datetime import date

import numpy as np

from live.drift import DayRecord, Fill, compare_day, drift_report
from models.drift import DriftReference

MODELS = {"lightgbm": "/registry/lightgbm/v0001"}
A, B = "S000.ALPACA", "S001.ALPACA"
MINUTE = 60_000_000_000


def intent(instrument: str, ts: int, side: str = "BUY", qty: str = "10", tags: str = "", type_: str = "MARKET",
           price: str = "") -> dict:
    return {"ts_init": ts, "instrument_id": instrument, "side": side, "quantity": qty, "type": type_,
            "price": price, "trigger_price": "", "time_in_force": "GTC", "tags": tags}


def day(bars=None, signals=None, intents=(), fills=(), pnl=0.0, models=MODELS) -> DayRecord:
    bars = frozenset(bars if bars is not None else [(i, t * MINUTE) for i in (A, B) for t in range(1, 6)])
    signals = signals if signals is not None else {k: (0.5 + k[1] / MINUTE / 100,) for k in bars}
    return DayRecord(model_dirs=models, bars=bars, signals=signals, intents=list(intents), fills=list(fills),
                     pnl=pnl)


def test_the_same_day_on_both_sides_has_no_difference():
    side = day(intents=[intent(A, MINUTE)], fills=[Fill(A, "BUY", 10, 100.0)], pnl=5.0)
    assert compare_day(side, side) == []


def test_a_bar_the_live_feed_lacked_explains_its_signal_and_what_follows_on_that_instrument():
    backtest = day(intents=[intent(A, MINUTE), intent(B, 3 * MINUTE)],
                   fills=[Fill(A, "BUY", 10, 100.0), Fill(B, "BUY", 10, 50.0)], pnl=4.0)
    dropped = (B, 2 * MINUTE)
    live = day(bars=backtest.bars - {dropped}, signals={k: v for k, v in backtest.signals.items() if k != dropped},
               intents=[intent(A, MINUTE)], fills=[Fill(A, "BUY", 10, 100.0)], pnl=2.0)
    differences = compare_day(live, backtest)
    assert {(d.kind, d.reason) for d in differences} == {("signal", "missing bar live"), ("order", "missing bar live"),
                                                         ("fill", "missing bar live"), ("pnl", "missing bar live")}
    assert [d.key for d in differences if d.kind == "signal"] == [f"{B} @ {2 * MINUTE}"]
    assert not any(d.unexplained for d in differences)


def test_later_probabilities_of_an_instrument_that_missed_a_bar_are_explained_by_it():
    backtest = day()
    dropped, later = (B, 2 * MINUTE), (B, 4 * MINUTE)
    signals = {k: v for k, v in backtest.signals.items() if k != dropped} | {later: (0.1,)}
    differences = compare_day(day(bars=backtest.bars - {dropped}, signals=signals), backtest)
    assert [(d.key, d.reason) for d in differences] == [(f"{B} @ {2 * MINUTE}", "missing bar live"),
                                                        (f"{B} @ {4 * MINUTE}", "missing bar live")]


def test_a_probability_apart_with_the_same_models_is_unexplained_and_within_tolerance_is_not():
    backtest = day()
    key = (A, 3 * MINUTE)
    nudged = day(signals={**backtest.signals, key: (backtest.signals[key][0] + 1e-9,)})
    assert compare_day(nudged, backtest) == []
    moved = day(signals={**backtest.signals, key: (backtest.signals[key][0] + 0.01,)})
    (difference,) = compare_day(moved, backtest)
    assert (difference.kind, difference.reason, difference.key) == ("signal", "unexplained", f"{A} @ {3 * MINUTE}")


def test_other_model_versions_explain_every_difference():
    backtest = day(intents=[intent(A, MINUTE)])
    live = day(signals={k: (0.9,) for k in backtest.bars}, models={"lightgbm": "/registry/lightgbm/v0002"})
    differences = compare_day(live, backtest)
    assert differences and {d.reason for d in differences} == {"model differs"}


def test_a_bracket_leg_filled_otherwise_is_the_fill_rule_and_a_later_quantity_is_sizing_from_equity():
    entry = [intent(A, MINUTE), intent(A, MINUTE, "SELL", tags="STOP_LOSS"), intent(A, MINUTE, "SELL", tags="TAKE_PROFIT")]
    backtest = day(intents=[*entry, intent(A, 4 * MINUTE, qty="10")],
                   fills=[Fill(A, "BUY", 10, 100.0), Fill(A, "SELL", 10, 104.0, "TAKE_PROFIT")], pnl=40.0)
    live = day(intents=[*entry, intent(A, 4 * MINUTE, qty="9")],
               fills=[Fill(A, "BUY", 10, 100.0), Fill(A, "SELL", 10, 98.0, "STOP_LOSS")], pnl=-20.0)
    reasons = {(d.kind, d.reason) for d in compare_day(live, backtest)}
    assert reasons == {("fill", "fill rule"), ("order", "sizing from equity"), ("pnl", "fill rule")}


def test_a_market_fill_one_tick_apart_is_the_backtest_venues_slippage():
    backtest = day(intents=[intent(A, MINUTE)], fills=[Fill(A, "BUY", 10, 100.01)])
    live = day(intents=[intent(A, MINUTE)], fills=[Fill(A, "BUY", 10, 100.0)])
    (difference,) = [d for d in compare_day(live, backtest) if d.kind == "fill"]
    assert difference.reason == "fill rule"
    two_ticks = day(intents=[intent(A, MINUTE)], fills=[Fill(A, "BUY", 10, 100.02)])
    (difference,) = [d for d in compare_day(live, two_ticks) if d.kind == "fill"]
    assert difference.reason == "unexplained"


def test_an_extra_live_order_with_the_same_bars_is_unexplained():
    backtest = day()
    live = day(intents=[intent(B, 2 * MINUTE)])
    (difference,) = compare_day(live, backtest)
    assert (difference.kind, difference.reason, difference.detail) == ("order", "unexplained", "no backtest order")


def test_a_live_signal_on_a_bar_the_catalog_lacks_is_a_late_bar():
    live = day()
    straggler = (A, 3 * MINUTE)
    backtest = day(bars=live.bars - {straggler}, signals={k: v for k, v in live.signals.items() if k != straggler})
    (difference,) = compare_day(live, backtest)
    assert (difference.kind, difference.reason) == ("signal", "late bar")


def test_the_report_counts_both_sides_and_carries_the_feature_drift():
    rng = np.random.default_rng(0)
    reference = DriftReference.fit(rng.normal(size=(2000, 2)), ["ret_1", "vol_30"])
    shifted = np.column_stack([rng.normal(size=400), rng.normal(loc=2.0, size=400)])
    backtest = dataclasses.replace(day(intents=[intent(A, MINUTE)]), features=shifted, feature_names=("ret_1", "vol_30"))
    report = drift_report("run-1", date(2024, 12, 31), day(), backtest, reference)
    assert report.counts["live_orders"] == 0 and report.counts["backtest_orders"] == 1
    assert [d.detail for d in report.unexplained] == ["no live order"]
    assert [f.feature for f in report.significant] == ["vol_30"]


def test_a_run_stopped_early_is_compared_over_the_minutes_it_traded():
    backtest = day()
    stopped = day(bars=[k for k in backtest.bars if k[1] <= 3 * MINUTE])
    assert {d.reason for d in compare_day(stopped, backtest)} == {"missing bar live"}
    assert compare_day(stopped, backtest.through(3 * MINUTE)) == []
