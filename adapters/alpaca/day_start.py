"""The day's start equity as Alpaca states it, for a daily-loss rule that must survive a restart.

Alpaca's account carries ``last_equity``: the equity at the previous trading day's close. A
node restarted mid-day that measured the day's start from its own (already reduced) equity
would let a losing day lose the limit again; the broker's figure is the same before and after
the restart. The account says nothing about which day that close was, so the client reads
GET /v2/clock right after GET /v2/account and tags the figure with the session it opens:

- inside a session, or earlier on the same New York date (pre-open), ``last_equity`` is the
  close before that session: it is that session's start;
- after a close (and overnight) it is ambiguous (the real service moves it some time after the
  close), so nothing is published; the strategy then keeps its own rule.
Reading the clock after the account keeps a read that straddles a close on the safe side: an
account read before the close with a clock read after it is dropped, never mislabelled.

The message (on the node's ``day_start_topic``, and kept in the cache under the same key for a
strategy that starts after the client connected) is JSON bytes
``{"session_open_ns": <the session's NYSE open, ns>, "last_equity": <float>}``.
"""

from decimal import Decimal

import msgspec
import pandas as pd

from catalog.sessions import session_bounds

NEW_YORK = "America/New_York"


def day_start_session(clock_timestamp: str) -> int | None:
    """The open (ns) of the session whose start ``last_equity`` read at ``clock_timestamp``
    (GET /v2/clock's ``timestamp``) is; None when it cannot be told (after a close)."""
    now = pd.Timestamp(clock_timestamp).tz_convert("UTC")
    bounds = session_bounds(now)
    if bounds is None:
        return None
    open_, close = bounds
    same_day = open_.tz_convert(NEW_YORK).date() == now.tz_convert(NEW_YORK).date()
    return open_.value if same_day and now < close else None


def day_start_message(last_equity: Decimal, clock_timestamp: str) -> bytes | None:
    """The message to publish for an account read followed by a clock read; None: none."""
    session = day_start_session(clock_timestamp)
    if session is None:
        return None
    return msgspec.json.encode({"session_open_ns": session, "last_equity": float(last_equity)})
