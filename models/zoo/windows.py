"""The inputs of the torch models: standardised feature windows ending at each row.

A tabular network reads a 1-bar window, a sequence network the last ``seq_len`` bars of its
row's segment (``panel.usable_rows(seq_len)`` guarantees the window is complete and never
crosses a symbol boundary). Gathering goes through a strided view of the C-ordered panel, so
each window is one block copy done inside numpy: no per-row Python loop and no full
(n, seq_len, f) copy of the panel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from models.dataset import Panel


def moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean/std over finite values; constant or all-NaN features get (0, 1)."""
    finite = np.isfinite(X)
    count = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, X, 0.0).sum(axis=0, dtype=np.float64) / count
    var = (np.where(finite, X - mean, 0.0) ** 2).sum(axis=0) / count
    std = np.sqrt(var)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def gather_windows(
    X: np.ndarray,
    rows: np.ndarray,
    seq_len: int,
    columns: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
) -> np.ndarray:
    """(len(rows), seq_len, len(columns)) float32 windows ending at each row, standardised
    with the training ``mean``/``std`` of those columns; NaN maps to 0 (the training mean)."""
    view = sliding_window_view(X, (seq_len, X.shape[1]))[:, 0]  # (n - seq_len + 1, L, f)
    w = view[rows - (seq_len - 1)]
    if len(columns) != X.shape[1] or (columns != np.arange(X.shape[1])).any():
        w = w[:, :, columns]
    w -= mean
    w /= std
    np.copyto(w, 0.0, where=~np.isfinite(w))
    return w


def check_windows(panel: Panel, rows: np.ndarray, seq_len: int) -> None:
    """ValueError unless every row has ``seq_len`` rows of history inside its own segment."""
    short = rows - panel.segment_start[rows] < seq_len - 1
    if short.any():
        raise ValueError(
            f"{int(short.sum())} rows have fewer than seq_len={seq_len} rows "
            "of history in their segment; select rows with panel.usable_rows(seq_len)"
        )
