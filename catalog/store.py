"""The project's view of a NautilusTrader ParquetDataCatalog: merging, crash-safe writes, fast reads.

Merge rule: a written row replaces the stored row of the same identifier with the same
``ts_init``; every other stored row stays. (NautilusTrader 1.221 detects overlapping files only
after writing one, so its own writer would duplicate a re-written range.) A write reads the
files whose interval overlaps the new rows, merges, writes the result to a temporary file in the
same directory, renames it into place and only then removes the files it supersedes: a failed
write (disk full, a crash) leaves the catalog as it was. A crash between that rename and the
removals leaves files overlapping the merged one; every read and write settles a directory first
(``_settled``), so no reader, the engine included, ever sees a row twice.

Bars are read back by decoding the Parquet columns directly (fixed-point int128) into a bars
frame, which is what the feature code wants; the engine itself still reads the same files
through the catalog. NautilusTrader's DataFusion reader panics (SIGABRT) on a damaged file, so
whatever the engine is about to read is first opened with pyarrow (``verify``), which names the
file instead; files written here carry page checksums so a flipped bit is caught too.
"""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
from nautilus_trader.core.nautilus_pyo3 import FIXED_PRECISION, FIXED_SCALAR
from nautilus_trader.model.data import Bar
from nautilus_trader.model.instruments import Equity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from catalog.errors import (
    CatalogBusyError,
    DamagedCatalogError,
    EmptyCatalogError,
    InvalidBarsError,
    MissingCatalogError,
)
from catalog.file_lock import FileLock
from catalog.instruments import (
    UNKNOWN_SECTOR,
    bar_type,
    equity,
    instrument_id,
    parse_symbol,
    sector_of,
)

SYNTHETIC_MARKER = "sextant-synthetic.json"
WRITER_LOCK = ".writer.lock"
BAR_COLUMNS = ["open", "high", "low", "close", "volume"]


__all__ = ["EmptyCatalogError", "MarketCatalog", "open_catalog"]


def open_catalog(path: str | Path) -> "MarketCatalog":
    """An existing catalog named by the user; a path that does not exist or an empty directory
    is refused (a typo must not look like an empty market)."""
    path = Path(path)
    if not path.exists():
        raise MissingCatalogError(
            f"catalog {path} does not exist; check the path (`sextant catalog info --catalog PATH` "
            "shows what a catalog holds)"
        )
    if not path.is_dir():
        raise MissingCatalogError(f"catalog {path} is a file, not a catalog directory")
    if not holds_anything(path):
        raise MissingCatalogError(
            f"catalog {path} is an empty directory; fill it with `sextant catalog generate`, `import-csv` "
            "or `ingest` first"
        )
    return MarketCatalog(path)


def holds_anything(path: Path) -> bool:
    """Whether a directory holds more than the lock file a writer leaves (a failed first ingest
    leaves only that: still an empty catalog)."""
    return path.is_dir() and any(p.name != WRITER_LOCK for p in path.iterdir())


def writer_lock(path: str | Path, purpose: str, wait_secs: float = 0.0) -> FileLock:
    """One ingest or import into a catalog at a time: each merges into the stored files and
    rewrites the ingest manifest, so two at once could each drop what the other wrote. Held by
    another writer (another process, or the panel's ingest while the scheduler's runs), it
    waits up to ``wait_secs``, then CatalogBusyError names that writer."""
    return FileLock(Path(path) / WRITER_LOCK, f"{purpose} into catalog {path}", busy=CatalogBusyError,
                    wait_secs=wait_secs)


class MarketCatalog:
    """Bars, instruments and custom data of one catalog directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.nautilus = ParquetDataCatalog(str(self.path))

    # -- instruments ----------------------------------------------------------------------------

    def instruments(self) -> list[Equity]:
        if not (self.path / "data").exists():
            return []
        _check_files(sorted((self.path / "data" / class_to_filename(Equity)).glob("*/*.parquet")))
        return [i for i in self.nautilus.instruments() if isinstance(i, Equity)]

    def symbols(self) -> list[str]:
        """Symbols that have both an instrument and bars, sorted."""
        with_bars = {s for s in (i.id.symbol.value for i in self.instruments()) if self._bar_files(s)}
        return sorted(with_bars)

    def sectors(self) -> dict[str, str]:
        return {i.id.symbol.value: sector_of(i) for i in self.instruments()}

    # -- provenance ------------------------------------------------------------------------------

    def mark_synthetic(self, description: dict) -> None:
        """Record that this catalog holds generated data, so reports can say so."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / SYNTHETIC_MARKER).write_text(json.dumps(description, indent=2))

    def synthetic_origin(self) -> dict | None:
        marker = self.path / SYNTHETIC_MARKER
        return json.loads(marker.read_text()) if marker.exists() else None

    # -- bars -----------------------------------------------------------------------------------

    def write_bars(
        self, symbol: str, frame: pd.DataFrame, sector: str | None = None, timeframe: str = "1m"
    ) -> int:
        """Write a bars frame (index = bar close, UTC) for one symbol; returns rows written.

        The Parquet file is encoded here, column-wise, in exactly the layout NautilusTrader
        writes (fixed-point int128 prices and sizes, the same schema metadata): the engine and
        ``ParquetDataCatalog.bars`` read it back unchanged, and it is an order of magnitude
        faster than building one ``Bar`` object per row."""
        symbol = parse_symbol(symbol)
        if frame.empty:
            return 0
        instrument = self._instrument_for(symbol, sector)
        ts = frame.index.as_unit("ns").asi8 if isinstance(frame.index, pd.DatetimeIndex) else None
        if ts is None:
            raise TypeError(f"bars for {symbol} need a DatetimeIndex of bar-close times")
        if len(ts) > 1 and np.any(np.diff(ts) <= 0):
            raise InvalidBarsError(f"bars for {symbol} are not strictly increasing in time")
        prices = {col: frame[col].to_numpy(np.float64) for col in BAR_COLUMNS}
        values = np.column_stack(list(prices.values()))
        if not np.all(np.isfinite(values)):
            raise InvalidBarsError(f"bars for {symbol} hold NaN or infinite values")
        if np.any(values < 0):
            raise InvalidBarsError(f"bars for {symbol} hold negative prices or volumes")
        identifier = str(bar_type(symbol, timeframe))
        price_precision, size_precision = instrument.price_precision, instrument.size_precision
        _check_priced(frame, symbol, price_precision)
        _check_representable(frame, symbol, price_precision, size_precision)
        columns = {
            col: _encode_fixed(values, price_precision if col != "volume" else size_precision)
            for col, values in prices.items()
        }
        columns["ts_event"] = pa.array(ts.astype(np.uint64), pa.uint64())
        columns["ts_init"] = columns["ts_event"]
        schema = pa.schema(
            [pa.field(c, pa.binary(16), nullable=False) for c in BAR_COLUMNS]
            + [pa.field("ts_event", pa.uint64(), nullable=False), pa.field("ts_init", pa.uint64(), nullable=False)],
            metadata={
                "bar_type": identifier,
                "instrument_id": str(instrument.id),
                "price_precision": str(price_precision),
                "size_precision": str(size_precision),
            },
        )
        self.nautilus.write_data([instrument])  # only once the frame is known to be writable
        self.write_table(Bar, identifier, pa.table(columns, schema=schema))
        return len(ts)

    def _instrument_for(self, symbol: str, sector: str | None) -> Equity:
        """The instrument to store with new bars: a stored symbol keeps its sector (unless one
        is given) and its price precision, so a catalog created at cents stays readable and
        consistent; a new symbol gets the default precision (``catalog.instruments``)."""
        stored = self._stored_instrument(symbol)
        if stored is None:
            return equity(symbol, UNKNOWN_SECTOR if sector is None else sector)
        return equity(symbol, sector_of(stored) if sector is None else sector, stored.price_precision)

    def _stored_instrument(self, symbol: str) -> Equity | None:
        """Only this symbol's instrument file: ingestion writes other symbols' in parallel."""
        if not (self.path / "data").exists():
            return None
        found = self.nautilus.instruments(instrument_ids=[str(instrument_id(symbol))])
        return next((i for i in found if isinstance(i, Equity)), None)

    def read_bars(
        self,
        symbol: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        timeframe: str = "1m",
    ) -> pd.DataFrame:
        """Bars frame for one symbol in [start, end] (bar-close times, inclusive)."""
        files = self._bar_files(symbol, timeframe)
        if not files:
            raise EmptyCatalogError(f"no {timeframe} bars for {symbol!r} in catalog {self.path}")
        filters = []
        if start is not None:
            filters.append(pds.field("ts_init") >= pd.Timestamp(start).value)
        if end is not None:
            filters.append(pds.field("ts_init") <= pd.Timestamp(end).value)
        expr = None
        for f in filters:
            expr = f if expr is None else expr & f
        try:
            table = pds.dataset(files, format=_CHECKED_PARQUET).to_table(filter=expr).sort_by("ts_init")
        except _READ_ERRORS:
            _check_files(files)  # names the damaged file
            raise
        metadata = pq.read_schema(files[0]).metadata
        price_precision = int(metadata[b"price_precision"])
        size_precision = int(metadata[b"size_precision"])
        frame = pd.DataFrame(
            {col: _decode_fixed(table.column(col)) for col in BAR_COLUMNS},
            index=pd.DatetimeIndex(table.column("ts_init").to_numpy().astype("datetime64[ns]"), name="ts").tz_localize("UTC"),
        )
        prices = ["open", "high", "low", "close"]
        frame[prices] = frame[prices].round(price_precision)
        frame["volume"] = frame["volume"].round(size_precision)
        return frame

    def bar_times(self, symbol: str, timeframe: str = "1m") -> pd.DatetimeIndex:
        """Sorted bar-close times (UTC) of one symbol, reading only that column: what an
        inventory needs, at a fraction of ``read_bars``' cost."""
        files = self._bar_files(symbol, timeframe)
        if not files:
            return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="ts")
        try:
            table = pds.dataset(files, format=_CHECKED_PARQUET).to_table(columns=["ts_init"])
        except _READ_ERRORS:
            _check_files(files)
            raise
        ns = np.sort(table.column("ts_init").to_numpy()).astype("datetime64[ns]")
        return pd.DatetimeIndex(ns, name="ts").tz_localize("UTC")

    def verify(self, symbols: Iterable[str], timeframe: str = "1m") -> None:
        """Read every instrument file and ``symbols``' bar files with pyarrow, checksums
        included, before NautilusTrader's engine reads them: a damaged file raises
        ``DamagedCatalogError`` naming it instead of panicking inside DataFusion."""
        self.instruments()
        _check_files([f for s in symbols for f in self._bar_files(s, timeframe)])

    def bar_count(self, symbol: str, timeframe: str = "1m") -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self._bar_files(symbol, timeframe))

    def _bar_files(self, symbol: str, timeframe: str = "1m") -> list[str]:
        return [str(p) for p in _settled(self._directory(Bar, str(bar_type(symbol, timeframe))))]

    def _directory(self, data_cls: type, identifier: str) -> Path:
        return self.path / "data" / class_to_filename(data_cls) / urisafe_identifier(identifier)

    # -- custom data ----------------------------------------------------------------------------

    def write_table(self, data_cls: type, identifier: str, table: pa.Table) -> None:
        """Merge an Arrow table already in ``data_cls``'s catalog schema into the catalog: its
        rows replace stored rows with the same ts_init, every other stored row is kept, and a
        failure part-way leaves the stored files untouched (module docstring)."""
        if table.num_rows == 0:
            return
        ts = table.column("ts_init").to_numpy()
        if np.any(np.diff(ts) < 0):
            raise ValueError(f"{data_cls.__name__} rows for {identifier} are not sorted by ts_init")
        start, end = int(ts[0]), int(ts[-1])
        directory = self._directory(data_cls, identifier)
        directory.mkdir(parents=True, exist_ok=True)
        superseded = [f for f in _settled(directory) if _overlaps(f, start, end)]
        merged = _merge(table, superseded)
        merged_ts = merged.column("ts_init")
        first, last = merged_ts[0].as_py(), merged_ts[-1].as_py()
        final = directory / f"{_file_stamp(first)}_{_file_stamp(last)}.parquet"
        _write_atomically(merged, final)
        for old in superseded:
            if old != final:
                old.unlink(missing_ok=True)  # a concurrent reader may have settled it already

    def common_columns(self, data_cls: type) -> set[str]:
        """The columns every stored file of ``data_cls`` has (footers only): how a reader tells
        a catalog written before a column existed."""
        files = sorted((self.path / "data" / class_to_filename(data_cls)).glob("*/*.parquet"))
        schemas = [set(pq.read_schema(f).names) for f in files]
        return set.intersection(*schemas) if schemas else set()

    def read_table(
        self, data_cls: type, identifiers: Iterable[str], start_ns: int | None = None, end_ns: int | None = None
    ) -> pa.Table:
        """Rows of custom data for ``identifiers`` with ts_init in [start_ns, end_ns], as Arrow."""
        files = [str(p) for i in identifiers for p in _settled(self._directory(data_cls, i))]
        if not files:
            return pa.table({})
        expr = None
        if start_ns is not None:
            expr = pds.field("ts_init") >= start_ns
        if end_ns is not None:
            upper = pds.field("ts_init") <= end_ns
            expr = upper if expr is None else expr & upper
        return pds.dataset(files).to_table(filter=expr)


# pyarrow's signals that a file is not readable Parquet: ArrowInvalid (a ValueError) for a bad
# footer or schema, OSError for corrupt pages, failed checksums and decompression errors.
_READ_ERRORS = (pa.ArrowException, OSError)
_CHECKED_PARQUET = pds.ParquetFileFormat(
    default_fragment_scan_options=pds.ParquetFragmentScanOptions(page_checksum_verification=True)
)


def _check_files(files: Iterable[str | Path]) -> None:
    """Read each file completely (page checksums verified where the file has them)."""
    for file in files:
        try:
            pq.ParquetFile(file, page_checksum_verification=True).read()
        except _READ_ERRORS as exc:
            raise DamagedCatalogError(
                f"catalog file {file} is damaged and cannot be read ({exc}); restore it from a backup or "
                "delete it and re-import or re-ingest that data"
            ) from exc


def _span(file: Path) -> tuple[int, int]:
    """(first, last) ts_init of a catalog file named ``<first ts>_<last ts>.parquet``."""
    first, last = (_parse_file_stamp(part) for part in file.stem.split("_"))
    return first, last


def _overlaps(file: Path, start: int, end: int) -> bool:
    first, last = _span(file)
    return first <= end and start <= last


def _settled(directory: Path) -> list[Path]:
    """The data files of one directory, sorted, after removing what a crashed write left behind.

    ``write_table`` renames the merged file into place before it removes the files it
    supersedes. A crash in between leaves those files beside it: each lies inside the merged
    file's interval, and every row it holds is in the merged file (a replaced row with its new
    value), so removing it loses nothing and keeping it would show its rows twice. Files that
    overlap without one containing the other are not something this writer leaves: they are
    named as damage rather than guessed at."""
    files = sorted(directory.glob("*.parquet"), key=lambda f: (_span(f)[0], -_span(f)[1]))
    kept: list[Path] = []
    for file in files:  # widest first among equal starts, so a container precedes what it holds
        first, last = _span(file)
        if kept and first <= _span(kept[-1])[1]:
            if last > _span(kept[-1])[1]:
                raise DamagedCatalogError(
                    f"catalog files {kept[-1]} and {file} overlap (not written by Sextant's merge); "
                    "delete one and re-import or re-ingest that range"
                )
            file.unlink(missing_ok=True)
            continue
        kept.append(file)
    return sorted(kept)


def _merge(new: pa.Table, superseded: list[Path]) -> pa.Table:
    """``new`` plus the rows of ``superseded`` files whose ts_init ``new`` does not hold."""
    if not superseded:
        return new
    new_ts = new.column("ts_init").to_numpy()
    kept = []
    for file in superseded:
        try:
            old = pq.read_table(file)
        except _READ_ERRORS:
            _check_files([file])
            raise
        keep = ~np.isin(old.column("ts_init").to_numpy(), new_ts)
        kept.append(pa.Table.from_arrays(old.select(new.column_names).columns, schema=new.schema).filter(keep))
    return pa.concat_tables([new, *kept]).sort_by("ts_init")


def _write_atomically(table: pa.Table, final: Path) -> None:
    """Write to a hidden temporary file beside ``final`` (same filesystem), flush it to disk,
    then rename it over ``final``: readers see the old file or the new one, never half."""
    fd, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    try:
        pq.write_table(table, temporary, write_page_checksum=True)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_priced(frame: pd.DataFrame, symbol: str, precision: int) -> None:
    """Every price must be positive at the stored precision: below half its last decimal
    (0.00004 at 4 decimals) a price would be written as 0, which no instrument trades at."""
    smallest = frame[["open", "high", "low", "close"]].min(axis=1)
    too_small = smallest < 0.5 * 10.0**-precision
    if too_small.any():
        at = frame.index[too_small.to_numpy()][0]
        raise InvalidBarsError(
            f"bars for {symbol}: price {float(smallest[too_small].iloc[0])!r} at {at} is not "
            f"positive at the catalog's {precision} decimals"
        )


_MAX_UNITS = 2.0**62  # the fixed-point encoder's range (see _encode_fixed)


def _check_representable(frame: pd.DataFrame, symbol: str, price_precision: int, size_precision: int) -> None:
    """A value the catalog's fixed-point columns cannot hold (a price of 1e300, a volume of 1e30:
    a unit slip in the source) is the data's problem, named by its bar, not an encoder failure."""
    for col in BAR_COLUMNS:
        precision = size_precision if col == "volume" else price_precision
        too_large = frame[col].to_numpy(np.float64) * 10.0**precision >= _MAX_UNITS
        if too_large.any():
            at = frame.index[too_large][0]
            limit = _MAX_UNITS / 10.0**precision
            raise InvalidBarsError(
                f"bars for {symbol}: {col} {float(frame[col].iloc[np.flatnonzero(too_large)[0]]):g} at {at} "
                f"is beyond what the catalog stores (below {limit:.3g} at {precision} decimals)"
            )


def _decode_fixed(column: pa.ChunkedArray) -> np.ndarray:
    """NautilusTrader's high-precision fixed-point (int128, scale 1e16) to float64."""
    raw = np.frombuffer(column.combine_chunks().buffers()[1], dtype=np.uint64)
    raw = raw[: 2 * len(column)].reshape(-1, 2)
    low = raw[:, 0].astype(np.float64)
    high = raw[:, 1].view(np.int64).astype(np.float64)
    return (high * 18446744073709551616.0 + low) / FIXED_SCALAR


_LOW_32 = np.uint64(0xFFFFFFFF)


def _encode_fixed(values: np.ndarray, precision: int) -> pa.FixedSizeBinaryArray:
    """float64 -> NautilusTrader's fixed-point int128 (scale 1e16), rounded to ``precision``.

    Exact integer arithmetic: units = round(x * 10**precision) (an int64), then
    units * 10**(16 - precision) as a 128-bit product assembled from 32-bit partial products,
    stored little-endian as (low uint64, high uint64)."""
    units = np.rint(values * 10.0**precision)
    if np.any(units < 0) or np.any(units >= 2.0**62):
        raise ValueError("prices and sizes must be non-negative and below 4.6e18 units")
    u = units.astype(np.uint64)
    m = 10 ** (FIXED_PRECISION - precision)
    m_hi, m_lo = np.uint64(m >> 32), np.uint64(m & 0xFFFFFFFF)
    u_hi, u_lo = u >> np.uint64(32), u & _LOW_32
    lo_lo = u_lo * m_lo  # < 2**64 each: 32-bit by 32-bit
    cross = u_hi * m_lo + u_lo * m_hi  # < 2**63 + 2**63: fits while u < 2**62 and m < 2**62
    hi_hi = u_hi * m_hi
    low = lo_lo + ((cross & _LOW_32) << np.uint64(32))
    carry = (low < lo_lo).astype(np.uint64)
    high = hi_hi + (cross >> np.uint64(32)) + carry
    raw = np.empty((len(u), 2), dtype=np.uint64)
    raw[:, 0], raw[:, 1] = low, high
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(u), [None, pa.py_buffer(raw.tobytes())])


def _file_stamp(ts_ns: int) -> str:
    stamp = pd.Timestamp(ts_ns, tz="UTC")
    return stamp.strftime("%Y-%m-%dT%H-%M-%S-") + f"{ts_ns % 1_000_000_000:09d}Z"


def _parse_file_stamp(text: str) -> int:
    """Inverse of ``_file_stamp`` (NautilusTrader names its files the same way)."""
    seconds, nanos = text.removesuffix("Z").rsplit("-", 1)
    return pd.Timestamp(pd.to_datetime(seconds, format="%Y-%m-%dT%H-%M-%S"), tz="UTC").value + int(nanos)
