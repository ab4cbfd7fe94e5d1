"""The arrays a model sees: features, labels and the bookkeeping that keeps sequences honest.

Models are engine-agnostic (Qlib-style): they never see bars, catalogs or NautilusTrader
objects, only a ``Panel``. Many symbols are concatenated into one panel so a model trains on
the cross-section at once; ``segment_start`` records where each symbol's contiguous,
time-ordered run begins, so sequence models never build a window that leaks one symbol's
history into another's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(eq=False)  # element-wise array equality has no single truth value
class Panel:
    """Features and labels for one or more symbols, each symbol's rows contiguous and ordered.

    ``X`` may hold NaN during indicator warm-up; ``y`` is 1/0 with NaN where no label exists
    (e.g. the last bars before the label horizon). ``segment_start[i]`` is the index of the
    first row of row ``i``'s segment. ``label_end_ns[i]``, when given, is the time of the last
    bar row ``i``'s label looks at, so a model that holds out the recent part of its training
    rows can purge the rows whose label reaches into it; None means each label is known at its
    own bar. Arrays are coerced to their canonical dtypes and the
    invariants are checked on construction, so a malformed panel fails here rather than as a
    silently wrong sequence window later.
    """

    X: np.ndarray
    y: np.ndarray
    ts_ns: np.ndarray
    symbol: np.ndarray
    segment_start: np.ndarray
    feature_names: tuple[str, ...]
    symbols: tuple[str, ...]
    label_end_ns: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.float32)
        self.ts_ns = np.asarray(self.ts_ns, dtype=np.int64)
        self.symbol = np.asarray(self.symbol, dtype=np.int32)
        self.segment_start = np.asarray(self.segment_start, dtype=np.int64)
        self.feature_names = tuple(self.feature_names)
        self.symbols = tuple(self.symbols)
        if self.label_end_ns is not None:
            self.label_end_ns = np.asarray(self.label_end_ns, dtype=np.int64)
        self._validate()

    def _validate(self) -> None:
        if self.X.ndim != 2 or self.X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"X has shape {self.X.shape}, expected (n, {len(self.feature_names)}) "
                "to match feature_names"
            )
        n = self.X.shape[0]
        for field in ("y", "ts_ns", "symbol", "segment_start", "label_end_ns"):
            if getattr(self, field) is not None and getattr(self, field).shape != (n,):
                raise ValueError(f"{field} has shape {getattr(self, field).shape}, expected ({n},)")
        labelled = self.y[np.isfinite(self.y)]
        if not np.isin(labelled, (0.0, 1.0)).all():
            raise ValueError("y must contain only 1, 0 or NaN")
        if n and (self.symbol.min() < 0 or self.symbol.max() >= len(self.symbols)):
            raise ValueError(f"symbol codes must index symbols (0..{len(self.symbols) - 1})")
        idx = np.arange(n)
        start = self.segment_start
        if n and start[0] != 0:
            raise ValueError("segment_start[0] must be 0")
        inside = start[1:] != idx[1:]  # rows continuing the previous row's segment
        if (start[1:][inside] != start[:-1][inside]).any():
            raise ValueError("segment_start must be the first row index of each contiguous segment")
        if (self.symbol[1:][inside] != self.symbol[:-1][inside]).any():
            raise ValueError("a segment must hold a single symbol")
        if (self.ts_ns[1:][inside] <= self.ts_ns[:-1][inside]).any():
            raise ValueError("ts_ns must be strictly increasing within each segment")

    def __len__(self) -> int:
        return self.X.shape[0]

    def usable_rows(self, seq_len: int = 1, require_label: bool = False) -> np.ndarray:
        """Rows whose last ``seq_len`` rows (itself included) lie in its segment with finite X.

        ``seq_len=1`` means "this row's features are all finite" (tabular models); a sequence
        model passes its window length so every window it builds is complete and never crosses
        a symbol boundary. ``require_label`` additionally keeps only rows with a finite label,
        which is what ``SignalModel.fit`` needs.
        """
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        n = len(self)
        idx = np.arange(n, dtype=np.int64)
        bad = np.where(np.isfinite(self.X).all(axis=1), -1, idx)
        # Most recent row that breaks a window: a non-finite row or the row before the segment.
        last_break = np.maximum(np.maximum.accumulate(bad), self.segment_start - 1)
        ok = idx - last_break >= seq_len
        if require_label:
            ok &= np.isfinite(self.y)
        return np.flatnonzero(ok)

    def select(self, names: Sequence[str]) -> Panel:
        """The same rows with only the feature columns ``names``, in that order: what a model
        fitted on a feature selection sees, in training and live alike. Unknown names are
        refused rather than dropped, since a model missing a column would be fed another."""
        names = tuple(names)
        if names == self.feature_names:
            return self
        index = {name: j for j, name in enumerate(self.feature_names)}
        missing = [n for n in names if n not in index]
        if missing or not names:
            raise ValueError(f"cannot select features {missing or '(none)'}; the panel has {self.feature_names}")
        # Every other field kept: the labels' ends purge the models' validation tails.
        return dataclasses.replace(self, X=self.X[:, [index[n] for n in names]], feature_names=names)

    @classmethod
    def concat(cls, panels: Sequence[Panel]) -> Panel:
        """Stack panels (e.g. per-symbol or per-period) keeping each input's segments separate.

        Symbol codes are remapped onto the union of the inputs' symbol tables (first-seen
        order). Inputs must share ``feature_names`` exactly: silently aligning different
        feature sets would feed a model columns it was not trained on.
        """
        if not panels:
            raise ValueError("Panel.concat needs at least one panel")
        names = panels[0].feature_names
        for p in panels[1:]:
            if p.feature_names != names:
                raise ValueError(f"feature_names differ: {p.feature_names} vs {names}")
        with_ends = [p.label_end_ns is not None for p in panels]
        if any(with_ends) and not all(with_ends):
            raise ValueError("label_end_ns is set on some panels but not on others")
        symbols: dict[str, int] = {}
        for p in panels:
            for s in p.symbols:
                symbols.setdefault(s, len(symbols))
        offsets = np.cumsum([0] + [len(p) for p in panels[:-1]])
        return cls(
            X=np.concatenate([p.X for p in panels]),
            y=np.concatenate([p.y for p in panels]),
            ts_ns=np.concatenate([p.ts_ns for p in panels]),
            symbol=np.concatenate(
                [np.array([symbols[s] for s in p.symbols], np.int32)[p.symbol] for p in panels]
            ),
            segment_start=np.concatenate(
                [p.segment_start + off for p, off in zip(panels, offsets, strict=True)]
            ),
            feature_names=names,
            symbols=tuple(symbols),
            label_end_ns=np.concatenate([p.label_end_ns for p in panels]) if all(with_ends) else None,
        )

    @classmethod
    def from_frames(
        cls,
        features: Mapping[str, pd.DataFrame],
        labels: Mapping[str, np.ndarray] | None,
        feature_names: Sequence[str],
    ) -> Panel:
        """Build a panel from per-symbol feature frames (one segment per symbol, dict order).

        Each frame's index gives the bar timestamps: a DatetimeIndex (tz-aware is converted to
        UTC; naive is taken as UTC) or integer nanoseconds. Columns are selected by
        ``feature_names`` so column order in the frames does not matter. ``labels[sym]`` must
        align row-for-row with ``features[sym]``; with ``labels=None`` y is all NaN (inference).
        """
        names = tuple(feature_names)
        if labels is not None and set(labels) != set(features):
            raise ValueError(
                f"labels symbols {sorted(labels)} differ from features symbols {sorted(features)}"
            )
        parts = []
        for sym, frame in features.items():
            missing = [c for c in names if c not in frame.columns]
            if missing:
                raise ValueError(f"{sym}: feature columns missing: {missing}")
            n = len(frame)
            y = np.full(n, np.nan, np.float32) if labels is None else np.asarray(labels[sym])
            if y.shape != (n,):
                raise ValueError(f"{sym}: labels shape {y.shape} does not match {n} feature rows")
            parts.append(
                cls(
                    X=frame.loc[:, list(names)].to_numpy(dtype=np.float32),
                    y=y,
                    ts_ns=_index_ns(frame.index),
                    symbol=np.zeros(n, np.int32),
                    segment_start=np.zeros(n, np.int64),
                    feature_names=names,
                    symbols=(sym,),
                )
            )
        return cls.concat(parts)


def _index_ns(index: pd.Index) -> np.ndarray:
    """UTC epoch nanoseconds of a frame index (DatetimeIndex or integer ns)."""
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        return index.as_unit("ns").asi8
    if pd.api.types.is_integer_dtype(index.dtype):
        return index.to_numpy(dtype=np.int64)
    raise ValueError(f"frame index must be a DatetimeIndex or integer ns, got {index.dtype}")
