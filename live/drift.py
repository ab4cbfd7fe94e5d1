"""The drift report of a live or rehearsed day: what the live run did against what the backtest
of the same bars with the same models did, each difference with its reason, and how far the
day's feature rows moved from the champion's training window.

Pure over records: the backtest of the day is computed elsewhere (``backtests.day_backtest``,
handed in by ``sextant`` or the scheduler, per DESIGN's dependency rule) and both sides
arrive here as ``DayRecord``s. Matching:

- signals by (instrument, bar ts): missing on either side, or a probability further apart
  than ``tolerance``;
- order intents in creation order, per instrument (a missing bar on one symbol shifts only
  that symbol's orders): missing/extra, side/quantity/type/price differences;
- fills in order per instrument (quantity, price); the day's P&L.

Reasons come from a fixed vocabulary (``Reason``), most specific first:
- "model differs": the two sides did not trade the same saved model versions;
- "missing bar live": the live feed lacked a bar the backtest had (so the live actor never
  signalled on it, and what follows on that instrument may differ);
- "late bar": the live run signalled on a bar the backtest's catalog does not hold (it
  arrived after the day was stored, or the catalog dropped it);
- "fill rule": a bracket leg filled differently: the backtest venue visits the nearer of
  high/low first on a bar touching both legs, the sandbox takes the stop first (see
  tests/live/test_parity.py); or the same fill one tick apart: the backtest venue's slippage
  model (``venue.slippage_probability``) moves a market fill by a tick, the sandbox fills at
  the bar's close;
- "sizing from equity": the same entry at another quantity after an earlier fill differed
  (the strategy sizes from the account's equity);
- "unexplained": none of the above. These are flagged: they break the one rule.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

import msgspec
import numpy as np

from models.drift import DriftReference, FeatureDrift
from models.features import CALENDAR_NAMES

Reason = Literal["model differs", "missing bar live", "late bar", "fill rule", "sizing from equity", "unexplained"]
Kind = Literal["signal", "order", "fill", "pnl"]
BRACKET_LEGS = frozenset({"STOP_LOSS", "TAKE_PROFIT"})
SLIPPAGE_TICK = 0.01  # dollars: the backtest venue's slippage moves a US stock's fill by one cent
PROBABILITY_TOLERANCE = 1e-6
PNL_TOLERANCE = 0.01  # dollars
_INTENT_FIELDS = ("side", "quantity", "type", "price", "trigger_price", "tags")

SignalKey = tuple[str, int]  # (instrument id, bar ts_event ns)


@dataclass(frozen=True)
class Fill:
    instrument_id: str
    side: str
    qty: float
    px: float
    tags: str = ""  # the filled order's tags: "STOP_LOSS"/"TAKE_PROFIT" for bracket legs


@dataclass(frozen=True)
class DayRecord:
    """One side of the day. ``bars``: the (instrument, ts) bars that side saw; ``intents``:
    the order intents in creation order (``strategies.records.order_intent`` fields)."""

    model_dirs: Mapping[str, str]
    bars: frozenset[SignalKey]
    signals: Mapping[SignalKey, tuple[float, ...]]
    intents: Sequence[Mapping[str, object]]
    fills: Sequence[Fill]
    pnl: float
    equity: Sequence[tuple[int, float]] = field(default_factory=tuple)  # (ts ns, equity), for the chart
    features: np.ndarray | None = None  # the day's feature rows (the backtest side computes them)
    feature_names: tuple[str, ...] = ()

    def through(self, ts: int) -> "DayRecord":
        """The bars and signals up to ``ts``: a run stopped early (the scheduler stops the node
        at its flatten minute) is compared over the minutes it traded."""
        return replace(self, bars=frozenset(k for k in self.bars if k[1] <= ts),
                       signals={k: p for k, p in self.signals.items() if k[1] <= ts})


# The backtest of a day: (day, the run's model dirs, starting cash) -> its record, features
# included. Built by ``sextant`` or the scheduler over ``backtests.day_backtest``.
DayBacktestHook = Callable[[date, Mapping[str, str], float], DayRecord]


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    key: str  # what was matched: instrument and bar time, or instrument and order/fill number
    reason: Reason
    detail: str

    @property
    def unexplained(self) -> bool:
        return self.reason == "unexplained"


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the journal stores for a day (``live.journal.drift``) and ``sextant journal drift`` shows."""

    trading_day: date
    run_id: str
    counts: dict[str, int]  # live/backtest signals, intents, fills
    live_pnl: float
    backtest_pnl: float
    differences: list[Difference]
    features: list[FeatureDrift]
    live_equity: list[tuple[int, float]] = []
    backtest_equity: list[tuple[int, float]] = []

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if d.unexplained]

    @property
    def significant(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.level == "significant"]


def compare_day(live: DayRecord, backtest: DayRecord, tolerance: float = PROBABILITY_TOLERANCE) -> list[Difference]:
    """Every difference between the two sides of the day, with its reason (module docstring)."""
    models_differ = dict(live.model_dirs) != dict(backtest.model_dirs)
    missing_live = backtest.bars - live.bars
    first_missing = _first_by_instrument(missing_live)
    out = _signal_differences(live, backtest, tolerance, models_differ, first_missing)
    fills = _fill_differences(live.fills, backtest.fills, models_differ, first_missing)
    out += _intent_differences(live.intents, backtest.intents, models_differ, first_missing, fills)
    out += fills
    if abs(live.pnl - backtest.pnl) > PNL_TOLERANCE:
        # P&L is made of fills: their reason first, then the orders'
        reasons = [d.reason for d in (*fills, *(d for d in out if d.kind == "order"))]
        reason = "model differs" if models_differ else next((r for r in reasons if r != "unexplained"),
                                                             "unexplained")
        out.append(Difference(kind="pnl", key="day", reason=reason,
                              detail=f"live {live.pnl:+.2f}, backtest {backtest.pnl:+.2f}"))
    return out


def live_record(signals: Iterable[Mapping], intents: Sequence[Mapping], fills: Iterable[Mapping],
                bars: Iterable[SignalKey], pnl: float, model_dirs: Mapping[str, str],
                equity: Sequence[tuple[int, float]] = ()) -> DayRecord:
    """The live side from the journal's rows (``live.journal.rows``: SignalRow, the order
    intents, FillRow)."""
    tags = {str(i["client_order_id"]): _text(i.get("tags")) for i in intents}
    created = {str(i["client_order_id"]): n for n, i in enumerate(intents)}
    fills = sorted(fills, key=lambda f: (int(f["ts_event"]), created.get(str(f["client_order_id"]), -1)))
    by_name = {(s["instrument_id"], int(s["ts_event"])): dict(zip(s["models"].split(","), s["probabilities"],
                                                                   strict=True)) for s in signals}
    return DayRecord(
        model_dirs=dict(model_dirs), bars=frozenset(bars), intents=list(intents), pnl=pnl, equity=tuple(equity),
        signals={key: tuple(float(p[name]) for name in sorted(p)) for key, p in by_name.items()},
        fills=[Fill(f["instrument_id"], f["side"], float(f["last_qty"]), float(f["last_px"]),
                    tags.get(str(f["client_order_id"]), "")) for f in fills])


def drift_report(run_id: str, trading_day: date, live: DayRecord, backtest: DayRecord,
                 reference: DriftReference | None, tolerance: float = PROBABILITY_TOLERANCE) -> DriftReport:
    """The comparison and, when the champion was saved with a drift reference and the
    backtest computed the day's feature rows, the PSI of every feature."""
    features = ([] if reference is None or backtest.features is None
                else feature_drift(reference, backtest.features, backtest.feature_names))
    return DriftReport(
        trading_day=trading_day, run_id=run_id,
        counts={"live_signals": len(live.signals), "backtest_signals": len(backtest.signals),
                "live_orders": len(live.intents), "backtest_orders": len(backtest.intents),
                "live_fills": len(live.fills), "backtest_fills": len(backtest.fills)},
        live_pnl=live.pnl, backtest_pnl=backtest.pnl, differences=compare_day(live, backtest, tolerance),
        features=features, live_equity=list(live.equity), backtest_equity=list(backtest.equity))


def feature_drift(reference: DriftReference, rows: np.ndarray, names: Sequence[str]) -> list[FeatureDrift]:
    """PSI per feature of the day's feature ``rows`` against the champion's training window.

    The calendar columns are left out: one day holds one weekday and the session's times of
    day by construction, so their PSI against a multi-day window is large every day and says
    nothing. (Day-scale features, e.g. 390-bar windows, also move as a block within one day:
    their PSI is noisier than an intraday feature's.)"""
    keep = [j for j, name in enumerate(names) if name not in CALENDAR_NAMES]
    return reference.compare(rows[:, keep], [names[j] for j in keep])


def _first_by_instrument(keys: Iterable[SignalKey]) -> dict[str, int]:
    first: dict[str, int] = {}
    for instrument, ts in keys:
        first[instrument] = min(ts, first.get(instrument, ts))
    return first


def _key(instrument: str, ts: int) -> str:
    return f"{instrument} @ {ts}"


def _signal_differences(live: DayRecord, backtest: DayRecord, tolerance: float, models_differ: bool,
                        first_missing: dict[str, int]) -> list[Difference]:
    """A missing live bar explains its own signal and every later one of its instrument: the
    live actor's rolling window lacks that bar (so its features and probabilities move)."""
    out = []
    for key in sorted(set(live.signals) | set(backtest.signals), key=lambda k: (k[1], k[0])):
        mine, theirs = live.signals.get(key), backtest.signals.get(key)
        shifted = key[0] in first_missing and first_missing[key[0]] <= key[1]
        if mine is None:
            reason = "model differs" if models_differ else "missing bar live" if shifted else "unexplained"
            out.append(Difference(kind="signal", key=_key(*key), reason=reason, detail="no live signal"))
        elif theirs is None:
            late = key in live.bars and key not in backtest.bars
            reason = "late bar" if late else "model differs" if models_differ else "unexplained"
            out.append(Difference(kind="signal", key=_key(*key), reason=reason, detail="no backtest signal"))
        else:
            gap = max((abs(a - b) for a, b in zip(mine, theirs, strict=True)), default=0.0)
            if gap > tolerance:
                reason = "model differs" if models_differ else "missing bar live" if shifted else "unexplained"
                out.append(Difference(kind="signal", key=_key(*key), reason=reason,
                                      detail=f"probabilities {_fmt(mine)} live, {_fmt(theirs)} backtest"))
    return out


def _fmt(probabilities: tuple[float, ...]) -> str:
    return "/".join(f"{p:.6f}" for p in probabilities)


def _by_instrument(items: Iterable, instrument) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for item in items:
        grouped.setdefault(instrument(item), []).append(item)
    return grouped


def _intent_differences(live: Sequence[Mapping], backtest: Sequence[Mapping], models_differ: bool,
                        first_missing: dict[str, int], fill_diffs: list[Difference]) -> list[Difference]:
    ours = _by_instrument(live, lambda i: str(i["instrument_id"]))
    theirs = _by_instrument(backtest, lambda i: str(i["instrument_id"]))
    out = []
    for instrument in sorted(set(ours) | set(theirs)):
        a, b = ours.get(instrument, []), theirs.get(instrument, [])
        for n in range(max(len(a), len(b))):
            mine, other = (a[n] if n < len(a) else None), (b[n] if n < len(b) else None)
            ts = int((mine or other)["ts_init"])
            if mine is None or other is None:
                detail = "no live order" if mine is None else "no backtest order"
                changed = []
            else:
                changed = [f for f in _INTENT_FIELDS if _text(mine.get(f)) != _text(other.get(f))]
                if not changed:
                    continue
                detail = ", ".join(f"{f} {_text(mine.get(f))} live vs {_text(other.get(f))} backtest"
                                   for f in changed)
            if models_differ:
                reason = "model differs"
            elif instrument in first_missing and first_missing[instrument] <= ts:
                reason = "missing bar live"
            elif changed == ["quantity"] and fill_diffs:  # equity moved with an earlier fill
                reason = "sizing from equity"
            else:
                reason = "unexplained"
            out.append(Difference(kind="order", key=f"{instrument} #{n}", reason=reason, detail=detail))
    return out


def _fill_differences(live: Sequence[Fill], backtest: Sequence[Fill], models_differ: bool,
                      first_missing: dict[str, int]) -> list[Difference]:
    ours = _by_instrument(live, lambda f: f.instrument_id)
    theirs = _by_instrument(backtest, lambda f: f.instrument_id)
    out = []
    for instrument in sorted(set(ours) | set(theirs)):
        a, b = ours.get(instrument, []), theirs.get(instrument, [])
        for n in range(max(len(a), len(b))):
            mine, other = (a[n] if n < len(a) else None), (b[n] if n < len(b) else None)
            if mine is not None and other is not None and (mine.side, mine.qty, mine.px) == (
                    other.side, other.qty, other.px):
                continue
            if mine is None or other is None:
                detail = "no live fill" if mine is None else "no backtest fill"
            else:
                detail = f"{mine.side} {mine.qty:g} @ {mine.px:g} live vs {other.side} {other.qty:g} @ {other.px:g} backtest"
            legs = {f.tags for f in (mine, other) if f is not None}
            if models_differ:
                reason = "model differs"
            elif instrument in first_missing:
                reason = "missing bar live"
            elif legs and legs <= BRACKET_LEGS or _one_tick_apart(mine, other):
                reason = "fill rule"
            else:
                reason = "unexplained"
            out.append(Difference(kind="fill", key=f"{instrument} #{n}", reason=reason, detail=detail))
    return out


def _one_tick_apart(mine: Fill | None, other: Fill | None) -> bool:
    """The same fill but for the backtest's slippage tick."""
    return (mine is not None and other is not None and (mine.side, mine.qty) == (other.side, other.qty)
            and abs(mine.px - other.px) <= SLIPPAGE_TICK + 1e-9)


def _text(value: object) -> str:
    """Parquet's null price reads back as NaN, the journal's as None: both are no price."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
