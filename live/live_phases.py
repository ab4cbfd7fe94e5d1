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

import asyncio
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Self

import pandas as pd

from adapters.alpaca.common import credentials_from_env
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.http import AlpacaHttpClient
from adapters.polygon.common import api_key_from_env
from live.daily_ingest import ingest_recent_sessions
from live.journal import Journal, RunInfo, open_journal
from live.journal.collector import JournalCollector
from live.node import NodeThread, build_node, node_config
from live.retrain import retrain_after_close
from live.schedule import DayPlan
from live.scheduler import Clock, RetrainHook
from live.screen import screened_universe
from live.settings import LiveConfig
from models.universe import week_start

_WATCH_SECS = 1.0

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
                 drift: LiveDriftHook | None = None) -> None:
        self.config = config
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
        self._journal = open_journal(self.config.journal, out_dir=self.out)
        return self

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
        resumed = self._node is None
        if resumed:
            self._start_node(plan)
        while (now := self.clock.now()) < until:
            if self._node.stopped():
                raise NodeStoppedError(f"the node stopped during the {plan.day} session; see its log")
            self.clock.sleep_until(min(until, now + pd.Timedelta(seconds=_WATCH_SECS)))
        return {"resumed": resumed}

    def close(self, plan: DayPlan) -> dict:
        run_id = None if self._collector is None else self._collector.config.run_id
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
        """The ``sessions`` sessions before ``before`` that the schedule's catalog lacks."""
        report = ingest_recent_sessions(
            self.config.schedule.catalog, self.config.universe, before, sessions,
            base_url=self.config.polygon.base_url, api_key=api_key_from_env(), sectors=dict(self.config.sectors))
        return {"ingested_sessions": dict(report.sessions_fetched), "ingest_failures": [str(f) for f in report.failures]}

    def _start_node(self, plan: DayPlan) -> None:
        run = RunInfo(trading_day=plan.day, name=self.config.name, mode=self.config.mode,
                      model_dirs={name: str(path) for name, path in self.config.model_dirs().items()})
        self._collector = self._journal.collector(run, out_dir=self._run_dir(plan))
        self._traded = self._screen(plan.day)
        self._node = self._stack.enter_context(NodeThread(
            build_node, self.config, node_config(self.config), warmup_as_of=self.clock.now().isoformat(),
            extra_actors=[self._collector], traded=self._traded))

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

    def _stop_node(self) -> None:
        self._stack.close()  # the node stops: cancel, flatten, the collector's last rows
        self._node = None
        if self._collector is not None:
            self._journal.finish(self._collector)
            self._collector = None

    def _broker_positions(self) -> dict[str, str]:
        """The account's open positions (symbol -> quantity), as Alpaca reports them."""
        alpaca = AlpacaExecClientConfig(base_url=self.config.alpaca.base_url, stream_url=self.config.alpaca.stream_url,
                                        paper=self.config.mode == "paper")
        client = AlpacaHttpClient(credentials_from_env(), alpaca)
        try:
            positions = asyncio.run(client.get_positions())
        finally:
            client.close()
        return {p["symbol"]: str(p["qty"]) for p in positions if float(p["qty"]) != 0}
