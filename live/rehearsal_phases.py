"""The phases of a rehearsed day: the schedule of `sextant run` offline, each session traded
by the one-day rehearsal (``live.rehearsal.rehearse``: the real node against both loopback
sandboxes), on the scheduler's simulated clock.

The session is traded until the close phase starts, the minute the strategy flattens (13:00
closes on half days move it), and the node is stopped there as the live close stops it; the
close then checks the sandbox broker's account is flat. The account carries over: each day
starts with the cash the previous one ended with. The catalog is the data source, so there
is nothing to ingest, and the post-close retrains on it (``live.retrain``): every session's
bars are there, and the nightly step reads none after the night's ``as_of``. The journal is
open for the whole rehearsal (each day's run and the nights' decisions).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pandas as pd

from live.journal import Journal, open_journal
from live.journal.sinks import Sink
from live.rehearsal import RehearsalResult, rehearse
from live.retrain import retrain_after_close
from live.schedule import NEW_YORK, DayPlan
from live.scheduler import RetrainHook
from live.settings import LiveConfig

if TYPE_CHECKING:
    from live.control import TradingControl

# After a rehearsed day: (its result, starting cash, its directory) -> the drift report's
# summary for the ledger (``live.drift_run``, with the day's backtest ``sextant`` builds).
DriftHook = Callable[[RehearsalResult, float, Path], dict]


@dataclass(frozen=True)
class RehearsedDaySummary:
    day: str
    minutes: int
    signals: int
    orders: int
    fills: int
    start_cash: float
    end_cash: float
    open_positions: dict[str, str]  # symbol -> quantity the broker still holds (empty: flat)

    @property
    def flat(self) -> bool:
        return not self.open_positions


class RehearsalDayPhases:
    """``DayPhases`` over a catalog; ``on_minute(day, done, total)`` reports progress and
    ``summaries`` collects each closed day."""

    def __init__(
        self,
        config: LiveConfig,
        catalog: Path,
        out: Path,
        *,
        starting_cash: float = 100_000.0,
        retrain: RetrainHook | None = None,
        on_minute: Callable[[DayPlan, int, int], None] | None = None,
        drift: DriftHook | None = None,
        control: "TradingControl | None" = None,
        minute_secs: float = 0.0,
        also: Sequence[Sink] = (),
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.out = out
        self.cash = starting_cash
        self.retrain = retrain
        self.on_minute = on_minute
        self.drift = drift
        self.control = control  # the control panel's: each day's node while it trades
        self.minute_secs = minute_secs  # a pause after each minute (a watched rehearsal)
        self.also = tuple(also)  # the panel's journal sink
        self.summaries: list[RehearsedDaySummary] = []
        self._traded: RehearsalResult | None = None
        self._journal: Journal | None = None

    def __enter__(self) -> Self:
        self._journal = open_journal(self.config.journal, out_dir=self.out)
        return self

    def __exit__(self, *exc: object) -> None:
        self._journal.close()

    @property
    def journal(self) -> Journal:
        """The rehearsal's journal (open inside the context)."""
        assert self._journal is not None
        return self._journal

    def pre_open(self, plan: DayPlan) -> dict:
        return {"models": {name: str(path) for name, path in self.config.model_dirs().items()}}

    def session(self, plan: DayPlan, until: pd.Timestamp) -> dict:
        report = None if self.on_minute is None else (lambda done, total: self.on_minute(plan, done, total))
        self._traded = rehearse(
            self.config, self.catalog, plan.day, starting_cash=self.cash,
            out_dir=self.out / f"rehearsal-{self.config.name}-{plan.day}", on_minute=report,
            until=until.tz_convert(NEW_YORK).strftime("%H:%M"), control=self.control,
            minute_secs=self.minute_secs, also=self.also)
        return {"minutes": self._traded.minutes, "elapsed_s": round(self._traded.elapsed_s, 2)}

    def close(self, plan: DayPlan) -> dict:
        traded = self._traded
        if traded is None or traded.day != plan.day:  # the session was missed: nothing traded
            summary = RehearsedDaySummary(str(plan.day), 0, 0, 0, 0, self.cash, self.cash, {})
        else:
            open_positions = {s: str(qty) for s, (qty, _avg) in traded.broker_positions.items() if qty != 0}
            summary = RehearsedDaySummary(
                day=str(plan.day), minutes=traded.minutes, signals=len(traded.signals), orders=len(traded.intents),
                fills=len(traded.fills), start_cash=self.cash, end_cash=traded.broker_cash, open_positions=open_positions)
            self.cash = traded.broker_cash
        self.summaries.append(summary)
        drift = {} if self.drift is None or traded is None or traded.day != plan.day else {
            "drift": self.drift(traded, summary.start_cash, self.out / f"rehearsal-{self.config.name}-{plan.day}")}
        return {**drift, "flat": summary.flat, "open_positions": summary.open_positions, "signals": summary.signals, "orders": summary.orders, "fills": summary.fills,
                "pnl": round(summary.end_cash - summary.start_cash, 2)}

    def post_close(self, plan: DayPlan) -> dict:
        return retrain_after_close(self.retrain, plan, self._journal)
