"""Resumable, idempotent ingestion of bars from any source into the catalog.

The unit of work is a (symbol, timeframe, NYSE session). A manifest in the catalog directory
records the sessions already ingested, so a re-run fetches only what is missing; a session
with legitimately no bars (a halt) is recorded too, so it is not asked for again. Missing
sessions are grouped into contiguous runs and cut into chunks of a few sessions, one fetch
each. A chunk is written with the idempotent ``MarketCatalog.write_bars`` and only then marked
done: a run interrupted anywhere resumes without a gap (nothing is marked before it is
written) or a duplicate (re-writing a chunk replaces its bars, ``MarketCatalog.write_table``).

The source is anything with a ``fetch`` method (``BarSource``): the catalog does not import
the adapters that provide one. A source signals a range it cannot deliver by raising
``BarSourceError``; the job records it against the symbol, stops that symbol and finishes the
others. Any other exception is a bug and propagates.
"""

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from catalog.errors import IngestManifestError, InvalidBarsError
from catalog.instruments import UNKNOWN_SECTOR, bar_spec, parse_symbol
from catalog.sessions import trading_sessions
from catalog.store import MarketCatalog, writer_lock

MANIFEST_NAME = "sextant-ingest.json"
MANIFEST_VERSION = 1
# Sessions per fetch. A fetch is the unit of resumption and costs at least one request, and
# request budgets are tight (Polygon's free tier: 5 a minute): 50 sessions of even extended-hours
# minutes (16 h a day) is 48,000 rows, under one 50,000-row page, so intraday fetches cost one
# request; daily bars are tiny, ten years in one fetch.
INTRADAY_CHUNK_SESSIONS = 50
DAILY_CHUNK_SESSIONS = 2520
EXCHANGE_TZ = "America/New_York"  # the zone of XNYS session dates

ProgressCallback = Callable[[str, int, int], None]


class BarSourceError(RuntimeError):
    """A source could not deliver the bars of a range (the message names symbol and range).

    The ingest job records it against the symbol and carries on with the others; any other
    exception is a bug and stops the job."""


class BarSource(Protocol):
    def fetch(self, symbol: str, first_session: date, last_session: date, timeframe: str) -> pd.DataFrame:
        """Bars of the sessions first..last (inclusive) in the catalog's frame layout: index
        ``ts`` = bar close (UTC), columns open high low close volume."""
        ...


@dataclass(frozen=True)
class IngestFailure:
    symbol: str
    first_session: date
    last_session: date
    error: str
    sessions_pending: int  # this symbol's sessions still not ingested, the failed chunk included

    def __str__(self) -> str:
        return (f"{self.symbol} {self.first_session}..{self.last_session}: {self.error} "
                f"({self.sessions_pending} sessions left; re-run to resume)")


@dataclass
class IngestReport:
    timeframe: str
    sessions_total: int  # per symbol, in [start, end]
    bars_written: dict[str, int] = field(default_factory=dict)
    sessions_fetched: dict[str, int] = field(default_factory=dict)
    sessions_skipped: dict[str, int] = field(default_factory=dict)  # already done before this run
    failures: list[IngestFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class IngestManifest:
    """The sessions already in the catalog per (timeframe, symbol), kept as runs of
    consecutive NYSE sessions so it stays small; every update is rewritten atomically (temp
    file + ``os.replace``) under a lock shared by the worker threads."""

    def __init__(self, catalog_path: str | Path) -> None:
        self.path = Path(catalog_path) / MANIFEST_NAME
        self._lock = threading.Lock()
        self._settings: dict[str, dict] = {}
        self._done: dict[str, dict[str, set[date]]] = self._load()

    def done(self, symbol: str, timeframe: str) -> set[date]:
        with self._lock:
            return set(self._done.get(timeframe, {}).get(symbol, ()))

    def mark_done(self, symbol: str, timeframe: str, sessions: Iterable[date]) -> None:
        with self._lock:
            self._done.setdefault(timeframe, {}).setdefault(symbol, set()).update(sessions)
            self._save()

    def claim_settings(self, timeframe: str, settings: Mapping[str, Any]) -> None:
        """Bind ``timeframe``'s bars in this catalog to the source settings that produced them
        (e.g. split adjustment, extended hours): a session fetched one way is never counted
        as done for another way, and one catalog never mixes the two."""
        wanted = {k: settings[k] for k in sorted(settings)}
        with self._lock:
            held = self._settings.get(timeframe)
            if held is None:
                self._settings[timeframe] = wanted
                self._save()
            elif held != wanted:
                raise IngestManifestError(
                    f"catalog {self.path.parent} holds {timeframe} bars ingested with {held}; this run asks "
                    f"for {wanted}. Use the same settings, or another --catalog"
                )

    def _load(self) -> dict[str, dict[str, set[date]]]:
        if not self.path.exists():
            return {}
        try:
            content = json.loads(self.path.read_text())
            if content.get("version") != MANIFEST_VERSION:
                raise ValueError(f"version {content.get('version')!r}, expected {MANIFEST_VERSION}")
            self._settings = dict(content.get("settings", {}))
            return {
                tf: {symbol: _expand_runs(runs) for symbol, runs in by_symbol.items()}
                for tf, by_symbol in content["done"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # any malformed JSON content
            raise IngestManifestError(
                f"ingest manifest {self.path} is unreadable ({exc}); delete it to re-ingest from scratch"
            ) from None

    def _save(self) -> None:
        content = {
            "version": MANIFEST_VERSION,
            "settings": self._settings,
            "done": {
                tf: {symbol: _compress_runs(days) for symbol, days in sorted(by_symbol.items())}
                for tf, by_symbol in sorted(self._done.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST_NAME}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(content, handle, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def check_request(start: date | str, end: date | str, timeframe: str) -> None:
    """Refuse a bad range or timeframe (CalendarRangeError, UnknownTimeframeError) before the
    caller contacts a vendor: a typo is named at once, not after reference look-ups fail."""
    bar_spec(timeframe)
    trading_sessions(start, end)


def ingest_bars(
    catalog_path: str | Path,
    symbols: Sequence[str],
    start: date | str,
    end: date | str,
    timeframe: str,
    source: BarSource,
    max_workers: int = 4,
    on_progress: ProgressCallback | None = None,
    sectors: dict[str, str] | None = None,
    chunk_sessions: int | None = None,
    source_settings: Mapping[str, Any] | None = None,
    wait_secs: float = 0.0,
) -> IngestReport:
    """Bring ``symbols``' ``timeframe`` bars of the NYSE sessions in [start, end] into the
    catalog, fetching only sessions not already ingested.

    Symbols run in parallel on ``max_workers`` threads (the source shares one rate budget
    between them). ``on_progress(symbol, sessions_done, sessions_total)`` is called from the
    worker threads, once at the start of each symbol and after each chunk lands.
    ``sectors`` names the sector of new instruments; a symbol already in the catalog keeps
    its own, anything else is UNKNOWN. ``source_settings`` (plain JSON values) are bound to
    the catalog's ``timeframe`` bars on the first run; a later run asking for other settings
    is refused (``IngestManifest.claim_settings``). ``chunk_sessions`` (sessions per fetch) defaults to
    ``DAILY_CHUNK_SESSIONS`` for 1d and ``INTRADAY_CHUNK_SESSIONS`` otherwise. One writer at a
    time (``writer_lock``): another one running, this waits up to ``wait_secs`` for it, then
    refuses (CatalogBusyError); the manifest is read once the lock is held, so what the other
    one fetched is not fetched again."""
    check_request(start, end, timeframe)
    if chunk_sessions is None:
        chunk_sessions = DAILY_CHUNK_SESSIONS if timeframe == "1d" else INTRADAY_CHUNK_SESSIONS
    if chunk_sessions < 1 or max_workers < 1:
        raise ValueError("chunk_sessions and max_workers must be at least 1")
    unique = list(dict.fromkeys(parse_symbol(s) for s in symbols))  # refused before any write
    sessions = [d.date() for d in trading_sessions(start, end).index]
    catalog_path = Path(catalog_path)
    catalog_path.mkdir(parents=True, exist_ok=True)
    with writer_lock(catalog_path, f"an ingest of {len(unique)} symbols' {timeframe} bars", wait_secs):
        return _ingest(catalog_path, unique, sessions, timeframe, source, max_workers, on_progress, sectors,
                       chunk_sessions, source_settings)


def _ingest(
    catalog_path: Path,
    unique: list[str],
    sessions: list[date],
    timeframe: str,
    source: BarSource,
    max_workers: int,
    on_progress: ProgressCallback | None,
    sectors: dict[str, str] | None,
    chunk_sessions: int,
    source_settings: Mapping[str, Any] | None,
) -> IngestReport:
    manifest = IngestManifest(catalog_path)
    if source_settings is not None:
        manifest.claim_settings(timeframe, source_settings)
    stored = MarketCatalog(catalog_path).sectors()
    job = _SymbolJob(catalog_path, sessions, timeframe, source, manifest, chunk_sessions, on_progress)
    report = IngestReport(timeframe, len(sessions))
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(unique)))) as pool:
        outcomes = pool.map(
            lambda s: job.run(s, (sectors or {}).get(s) or stored.get(s, UNKNOWN_SECTOR)), unique
        )
        for symbol, (bars, fetched, skipped, failure) in zip(unique, outcomes, strict=True):
            report.bars_written[symbol] = bars
            report.sessions_fetched[symbol] = fetched
            report.sessions_skipped[symbol] = skipped
            if failure is not None:
                report.failures.append(failure)
    return report


@dataclass(frozen=True)
class _SymbolJob:
    catalog_path: Path
    sessions: list[date]
    timeframe: str
    source: BarSource
    manifest: IngestManifest
    chunk_sessions: int
    on_progress: ProgressCallback | None

    def run(self, symbol: str, sector: str) -> tuple[int, int, int, IngestFailure | None]:
        """(bars written, sessions fetched, sessions skipped, failure) for one symbol."""
        done = self.manifest.done(symbol, self.timeframe)
        missing = [s for s in self.sessions if s not in done]
        skipped, fetched, bars = len(self.sessions) - len(missing), 0, 0
        total = len(self.sessions)
        self._progress(symbol, skipped, total)
        catalog = MarketCatalog(self.catalog_path)  # one per thread: nothing shared but files
        for chunk in _chunks(missing, self.sessions, self.chunk_sessions):
            pending = len(missing) - fetched
            try:
                frame = self.source.fetch(symbol, chunk[0], chunk[-1], self.timeframe)
                _check_within(frame, symbol, chunk)
            except BarSourceError as exc:
                return bars, fetched, skipped, self._failure(symbol, chunk, str(exc), pending)
            try:
                bars += catalog.write_bars(symbol, frame, sector=sector, timeframe=self.timeframe)
            except InvalidBarsError as exc:
                return bars, fetched, skipped, self._failure(symbol, chunk, f"bars rejected: {exc}", pending)
            self.manifest.mark_done(symbol, self.timeframe, chunk)
            fetched += len(chunk)
            self._progress(symbol, skipped + fetched, total)
        return bars, fetched, skipped, None

    def _failure(self, symbol: str, chunk: list[date], error: str, pending: int) -> IngestFailure:
        return IngestFailure(symbol, chunk[0], chunk[-1], error, pending)

    def _progress(self, symbol: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(symbol, done, total)


def _chunks(missing: list[date], sessions: list[date], size: int) -> list[list[date]]:
    """Runs of sessions consecutive in ``sessions``, each cut into pieces of <= ``size``."""
    position = {s: i for i, s in enumerate(sessions)}
    chunks: list[list[date]] = []
    for session in missing:
        last = chunks[-1] if chunks else None
        if last is not None and position[session] == position[last[-1]] + 1 and len(last) < size:
            last.append(session)
        else:
            chunks.append([session])
    return chunks


def _check_within(frame: pd.DataFrame, symbol: str, chunk: list[date]) -> None:
    """A source must return bars of the asked sessions only (their Eastern dates; a bar
    closing at midnight belongs to the day before), or bars of sessions the manifest does not
    list as done would enter the catalog (and be fetched again on a later run)."""
    if frame.empty:
        return
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise BarSourceError(f"{symbol} {chunk[0]}..{chunk[-1]}: source returned no tz-aware bar-close index")
    lo = pd.Timestamp(chunk[0]).tz_localize(EXCHANGE_TZ)
    hi = (pd.Timestamp(chunk[-1]) + pd.Timedelta(days=1)).tz_localize(EXCHANGE_TZ)
    ts = frame.index
    if ts.min() <= lo or ts.max() > hi:
        raise BarSourceError(
            f"{symbol} {chunk[0]}..{chunk[-1]}: source returned bars outside these sessions "
            f"({ts.min()}..{ts.max()})"
        )


def _compress_runs(days: set[date]) -> list[list[str]]:
    """Sorted session dates -> [[first, last], ...] runs of consecutive NYSE sessions."""
    if not days:
        return []
    ordered = sorted(days)
    calendar = trading_sessions(ordered[0], ordered[-1]).index
    positions = calendar.get_indexer(pd.DatetimeIndex(ordered))
    if np.any(positions < 0):
        raise ValueError("manifest holds a date that is not an NYSE session")
    breaks = np.flatnonzero(np.diff(positions) != 1)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [len(ordered) - 1]))
    return [[ordered[a].isoformat(), ordered[b].isoformat()] for a, b in zip(firsts, lasts, strict=True)]


def _expand_runs(runs: list[list[str]]) -> set[date]:
    return {d.date() for first, last in runs for d in trading_sessions(first, last).index}
