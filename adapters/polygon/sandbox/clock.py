"""Simulated time for the sandbox: what "now" is decides which bars exist yet.

A manual clock moves only when the test says so, which makes a live-feed test deterministic.
A paced clock runs ``speed`` simulated seconds per real second from the moment the sandbox
starts, which is what a rehearsal or a benchmark of a live client wants.
"""

import threading
import time

import pandas as pd


class SimClock:
    """Simulated UTC time in nanoseconds; create it with ``manual`` or ``paced``."""

    def __init__(self, start_ns: int, speed: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._start_ns = start_ns
        self._speed = speed
        self._now_ns = start_ns
        self._anchor_real_ns: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def manual(cls, start: pd.Timestamp) -> "SimClock":
        return cls(_utc_ns(start), None)

    @classmethod
    def paced(cls, start: pd.Timestamp, speed: float = 60.0) -> "SimClock":
        return cls(_utc_ns(start), float(speed))

    @property
    def is_manual(self) -> bool:
        return self._speed is None

    def start(self) -> None:
        """Anchor a paced clock to real time (the sandbox calls this when it starts serving);
        before that it stands at its start. Calling it again keeps the first anchor."""
        with self._lock:
            if self._anchor_real_ns is None:
                self._anchor_real_ns = time.monotonic_ns()

    def now_ns(self) -> int:
        with self._lock:
            if self._speed is None or self._anchor_real_ns is None:
                return self._now_ns
            elapsed = time.monotonic_ns() - self._anchor_real_ns
            return self._start_ns + int(elapsed * self._speed)

    def set_ns(self, ts_ns: int) -> None:
        """Move a manual clock forward to ``ts_ns``."""
        with self._lock:
            if self._speed is not None:
                raise RuntimeError("a paced clock moves by itself; only a manual clock can be set")
            if ts_ns < self._now_ns:
                raise ValueError(
                    f"simulated time cannot go back: {pd.Timestamp(ts_ns, tz='UTC')} is before "
                    f"{pd.Timestamp(self._now_ns, tz='UTC')}"
                )
            self._now_ns = ts_ns

    def real_seconds_until(self, ts_ns: int) -> float:
        """Real seconds until a paced clock reaches ``ts_ns`` (0 if already past)."""
        if self._speed is None:
            raise RuntimeError("a manual clock never reaches a time by itself")
        return max(0.0, (ts_ns - self.now_ns()) / self._speed / 1e9)


def _utc_ns(ts: pd.Timestamp | str) -> int:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"clock start must be tz-aware (UTC), got {ts!r}")
    return int(stamp.tz_convert("UTC").value)
