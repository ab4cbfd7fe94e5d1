"""The phases of a live (or paper) trading day: what `sextant run` does at each time of the
schedule with the real TradingNode (``live.node.NodeThread``), Polygon and Alpaca.

The node is started at pre-open (it connects, reconciles with Alpaca and warms up) and runs
in its background thread through the session; the close stops it (the strategy cancels and
flattens, see ``live.node.SextantNode``) and then asks Alpaca itself whether the account is
flat. A process restarted during the session starts the node in ``session``: NautilusTrader
reconciles the orders and positions the broker holds, so none is placed twice. Leaving the
context (Ctrl-C, SIGTERM) stops a running node the same way.
"""

import asyncio
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
from live.settings import LiveConfig

_WATCH_SECS = 1.0


class NodeStoppedError(RuntimeError):
    """The node stopped by itself during the session (see its log)."""


class LiveDayPhases:
    """``DayPhases`` of a live node. One journal (``config.journal``: PostgreSQL as events
    happen, and/or Parquet files under ``out/NAME-DAY``) is open for the whole process; each
    day's node is one run of it, finished at that day's close."""

    def __init__(self, config: LiveConfig, out: Path, clock: Clock, retrain: RetrainHook | None = None) -> None:
        self.config = config
        self.out = out
        self.clock = clock
        self.retrain = retrain
        self._stack = ExitStack()
        self._node: NodeThread | None = None
        self._journal: Journal | None = None
        self._collector: JournalCollector | None = None

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
        self._stop_node()
        positions = self._broker_positions()
        return {"flat": not positions, "open_positions": positions}

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
        self._collector = self._journal.collector(run, out_dir=self.out / f"{self.config.name}-{plan.day}")
        self._node = self._stack.enter_context(NodeThread(
            build_node, self.config, node_config(self.config), extra_actors=[self._collector]))

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
