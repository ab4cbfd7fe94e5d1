"""The StrategyDecision custom data type: what the EnsembleStrategy did with one MLSignal.

A live day's journal must say why a signal was not traded as well as that one was: the
strategy publishes one decision for every signal of an instrument it trades (only when its
config's ``publish_decisions`` is on: live nodes, never backtests or tuning trials). The
journal collector stores them as ``strategy_decisions`` rows.

``action`` is one of ACTIONS; an entry (``enter_long``/``enter_short``) names the entry order it
created (``client_order_id``) and has no ``reason``; ``hold`` (the vote is not sure enough) and
``skip`` (a rule stopped the entry) carry one of REASONS. The row carries plain strings (the
enums' values), which the journal stores as they are. No ``from __future__ import
annotations`` here: ``@customdataclass`` reads real annotation types.
"""

import math
from enum import StrEnum

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.identifiers import InstrumentId


class Action(StrEnum):
    ENTER_LONG = "enter_long"
    ENTER_SHORT = "enter_short"
    HOLD = "hold"  # the ensemble is not sure enough either way
    SKIP = "skip"  # a rule stopped the entry


class Reason(StrEnum):
    """Why a signal was not traded, in the order the strategy checks. One name a line: an
    operator control that stops entries adds its own here (and its check to
    ``EnsembleStrategy._entry_blocked``)."""

    BELOW_THRESHOLD = "below_threshold"  # the vote (action hold)
    EMERGENCY_HALT = "emergency_halt"  # the operator's emergency stop: no entry for the rest of the run
    HALTED = "halted"  # the daily loss limit stopped trading for the day
    ENTRIES_PAUSED = "entries_paused"  # the operator paused new entries (the panel)
    EXECUTION_DISCONNECTED = "execution_disconnected"  # the venue's order updates are unseen
    OUTSIDE_ENTRY_WINDOW = "outside_entry_window"  # before the session opens or after the entry cutoff
    POSITION_OPEN = "position_open"  # one position per stock: its bracket manages the exit
    ORDER_OPEN = "order_open"  # an order of this stock is still working
    NO_VOLATILITY = "no_volatility"  # the volatility-targeted stop needs the signal's volatility
    ENTRY_PENDING = "entry_pending"  # an entry of this stock is in flight
    MAX_POSITIONS = "max_positions"  # open positions and entries in flight are at the limit
    NO_BAR = "no_bar"  # no bar of the stock yet to price the entry
    SIZE_BELOW_ONE = "size_below_one"  # the risk budget or the per-stock cap buys less than a share
    SECTOR_CAP = "sector_cap"  # the sector's cap leaves room for less than a share


ACTIONS = frozenset(a.value for a in Action)
REASONS = frozenset(r.value for r in Reason)


@customdataclass
class StrategyDecision(Data):
    """``ts_event``: the signal's bar close; ``ts_init``: when the strategy decided.
    ``probability``: the ensemble's, computed for the record also when a rule stopped the
    signal before the vote."""

    instrument_id: InstrumentId = InstrumentId.from_str("NULL.NULL")
    probability: float = math.nan
    threshold: float = math.nan
    action: str = ""
    reason: str = ""
    client_order_id: str = ""
