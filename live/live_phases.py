"""The phases of a live (or paper) trading day: what `sextant run` does at each time of the
schedule with the real TradingNode (``live.node.NodeThread``), Polygon and Alpaca.

The node is started at pre-open (it connects, reconciles with Alpaca and warms up) and runs
in its background thread through the session; the close stops it (the strategy cancels and
flattens, see ``live.node.SextantNode``) and then asks Alpaca itself whether the account is
flat. A process restarted during the session starts the node in ``session``: NautilusTrader
reconciles the orders and positions the broker holds, so none is placed twice. Leaving the
context (Ctrl-C, SIGTERM) stops a running node the same way. With a drift hook the close
also ingests the day into the schedule's catalog and reports the day's drift: the run's side
read back from the journal (the bars it received, its signals, orders and fills), the
backtest over the catalog's bars.
"""

import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Self

import pandas as pd

from adapters.alpaca.common import ALPACA
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.polygon.common import api_key_from_env
from catalog.errors import CatalogBusyError
from live.control import ControlRefused, TradingControl, broker_state
from live.daily_ingest import ingest_recent_sessions
from live.journal import Journal, RunInfo, open_journal
from live.journal.collector import JournalCollector
from live.journal.sinks import Sink
from live.node import NodeThread, build_node, node_config
from live.retrain import retrain_after_close
from live.schedule import DayPlan
from live.scheduler import Clock, RetrainHook
from live.screen import screened_universe
from live.settings import LiveConfig
from models.universe import week_start

_WATCH_SECS = 1.0
INGEST_WAIT_SECS = 600.0  # for another ingest into the schedule's catalog (the operator's) to finish

# After a live day: (the journal, the day's run id, the day, the run's directory) -> the drift
# report's summary for the ledger (``live.drift_run.report_live_day``, built by ``sextant``).
LiveDriftHook = Callable[[Journal, str, date, Path], dict]


class NodeStoppedError(RuntimeError):
    """The node stopped by itself during the session (see its log)."""


class LiveDayPhases:
    """``DayPhases`` of a live node. One journal (``config.journal``: PostgreSQL as events
    happen, and/or Parquet files under ``out/NAME-DAY``) is open for the whole process; each
    day's node is one run of it, finished at that day's close."""

    def __init__(self, config: LiveConfig, out: Path, clock: Clock, retrain: RetrainHook | None = None,
                 drift: LiveDriftHook | None = None, control: TradingControl | None = None,
                 also: Sequence[Sink] = ()) -> None:
        """``control``: the control panel's, given each node (and this, to stop and start
        it on the operator's request); ``also``: more journal sinks (the panel's)."""
        self.config = config
        self.control = control
        self.also = tuple(also)
        self._lifecycle_lock = threading.RLock()
        self._plan: DayPlan | None = None
        self._operator_stopped = False
        self.out = out
        self.clock = clock
        self.retrain = retrain
        self.drift = drift
        self._stack = ExitStack()
        self._node: NodeThread | None = None
        self._journal: Journal | None = None
        self._collector: JournalCollector | None = None
        self._traded: list[str] | None = None  # this week's screen (None: every symbol)

    def __enter__(self) -> Self:
        self._journal = open_journal(self.config.journal, out_dir=self.out, also=self.also)
        return self

    @property
    def journal(self) -> Journal:
        """The process's journal (open inside the context)."""
        assert self._journal is not None
        return self._journal

    def __exit__(self, *exc: object) -> None:
        try:
            self._stop_node()
        finally:
            if self._journal is not None:
                self._journal.close()

    def pre_open(self, plan: DayPlan) -> dict:
        record = {"models": {name: str(path) for name, path in self.config.model_dirs().items()}}
        if self.config.schedule.catalog is not None:
            record |= self._ingest(plan.day, self.config.schedule.ingest_sessions)
        self._start_node(plan)
        if self._traded is not None:
            record["screen"] = {"week": week_start(plan.day).isoformat(), "traded": list(self._traded)}
        return record

    def session(self, plan: DayPlan, until: pd.Timestamp) -> dict:
        resumed = self._node is None and not self._operator_stopped
        if resumed:
            self._start_node(plan)
        while (now := self.clock.now()) < until:
            node = self._node  # None: the operator stopped it; the session waits without one
            if node is not None and node.stopped():
                raise NodeStoppedError(f"the node stopped during the {plan.day} session; see its log")
            self.clock.sleep_until(min(until, now + pd.Timedelta(seconds=_WATCH_SECS)))
        return {"resumed": resumed}

    def close(self, plan: DayPlan) -> dict:
        run_id = None if self._collector is None else self._collector.config.run_id
        self._plan = None  # the operator cannot start a node after the session
        self._stop_node()
        positions = self._broker_positions()
        record = {"flat": not positions, "open_positions": positions}
        if self.drift is not None and run_id is not None and self.config.schedule.catalog is not None:
            record |= self._ingest(plan.day + timedelta(days=1), 1)  # the day's own bars
            record["drift"] = self.drift(self._journal, run_id, plan.day, self._run_dir(plan))
        return record

    def post_close(self, plan: DayPlan) -> dict:
        """A retrain reads the schedule's catalog (`sextant run` requires one with a retrain):
        pre-open brought it to yesterday, so the day's own bars are ingested first."""
        catalog = self.config.schedule.catalog
        ingested = {} if self.retrain is None or catalog is None else self._ingest(plan.day + timedelta(days=1), 1)
        return ingested | retrain_after_close(self.retrain, plan, self._journal)

    def _ingest(self, before: date, sessions: int) -> dict:
        """The ``sessions`` sessions before ``before`` that the schedule's catalog lacks. An
        ingest the operator started (the panel) is waited for; one that outlasts the wait is
        recorded as this ingest's failure and the day goes on with the catalog as it is, as
        with a vendor's failures."""
        try:
            report = ingest_recent_sessions(
                self.config.schedule.catalog, self.config.universe, before, sessions,
                base_url=self.config.polygon.base_url, api_key=api_key_from_env(), sectors=dict(self.config.sectors),
                wait_secs=INGEST_WAIT_SECS)
        except CatalogBusyError as e:
            return {"ingested_sessions": {}, "ingest_failures": [str(e)]}
        return {"ingested_sessions": dict(report.sessions_fetched), "ingest_failures": [str(f) for f in report.failures]}

    def _start_node(self, plan: DayPlan) -> None:
        with self._lifecycle_lock:
            self._plan = plan
            self._operator_stopped = False
            self._start_node_now(plan)

    def _start_node_now(self, plan: DayPlan) -> None:
        run = RunInfo(trading_day=plan.day, name=self.config.name, mode=self.config.mode,
                      model_dirs={name: str(path) for name, path in self.config.model_dirs().items()})
        self._collector = self._journal.collector(run, out_dir=self._run_dir(plan))
        self._traded = self._screen(plan.day)
        cfg = node_config(self.config)
        self._node = self._stack.enter_context(NodeThread(
            build_node, self.config, cfg, warmup_as_of=self.clock.now().isoformat(),
            extra_actors=[self._collector], traded=self._traded))
        if self.control is not None:
            self.control.set_node(self._node, cfg.exec_clients[ALPACA], lifecycle=self)

    def _screen(self, day: date) -> list[str] | None:
        """The universe's stocks this week's screen passes (None: no screen configured), from
        the schedule's catalog as pre-open left it: the sessions before the week's Monday."""
        rule = self.config.universe_screen
        if rule is None:
            return None
        frame = screened_universe(self.config.schedule.catalog, self.config.universe, rule, day)
        return sorted(frame.loc[frame["selected"], "symbol"])

    def _run_dir(self, plan: DayPlan) -> Path:
        return self.out / f"{self.config.name}-{plan.day}"

    def stop_node_for_operator(self) -> None:
        """The operator's stop (``live.control``): cancel, flatten, no node until started
        again (the session phase waits out its time)."""
        with self._lifecycle_lock:
            self._operator_stopped = True
            self._stop_node()

    def start_node_for_operator(self) -> None:
        """The operator's start: a new run of the day's node, which reconciles with Alpaca
        (the orders and positions it holds are not placed again)."""
        with self._lifecycle_lock:
            if self._plan is None:
                raise ControlRefused("start the node: the day's session is over (the next pre-open starts one)")
            if self._node is None:
                self._start_node(self._plan)

    def _stop_node(self) -> None:
        with self._lifecycle_lock:
            if self.control is not None:
                self.control.set_node(None)
            self._stack.close()  # the node stops: cancel, flatten, the collector's last rows
            self._node = None
            if self._collector is not None:
                self._journal.finish(self._collector)
                self._collector = None

    def _broker_positions(self) -> dict[str, str]:
        """The account's open positions (symbol -> quantity), as Alpaca reports them."""
        alpaca = AlpacaExecClientConfig(base_url=self.config.alpaca.base_url, stream_url=self.config.alpaca.stream_url,
                                        paper=self.config.mode == "paper")
        return broker_state(alpaca)[0]
