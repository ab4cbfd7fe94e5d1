"""What the two sandboxes' scripted faults have in common: ``key=value`` options from a CLI
string, and a thread-safe queue of faults each consumed a set number of times by the first
request, connection or event it matches (in the order the faults were added)."""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F")


class FaultSpecError(ValueError):
    """A scripted fault that cannot be built as written; the message names the spec."""

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_options(
    spec: str,
    raw_options: str,
    known: frozenset[str],
    ints: frozenset[str],
    floats: frozenset[str],
    nullable: frozenset[str] = frozenset(),
) -> dict[str, object]:
    """``times=2,clean=yes,...`` -> typed values; errors name the spec and the bad part.
    ``clean`` is the one boolean; ``nullable`` options accept ``none``."""
    options: dict[str, object] = {}
    if not raw_options.strip():
        return options
    for item in raw_options.split(","):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in known:
            raise FaultSpecError(f"fault spec {spec!r}: bad option {item!r}; options are {sorted(known)}")
        options[key] = _convert(key, raw, spec, ints, floats, nullable)
    return options


def _convert(key: str, raw: str, spec: str, ints: frozenset[str], floats: frozenset[str],
             nullable: frozenset[str]) -> object:
    if key in nullable and raw.lower() == "none":
        return None
    try:
        if key == "clean":
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(raw)
            return raw.lower() in _TRUE
        if key in ints:
            return int(raw)
        if key in floats:
            return float(raw)
    except ValueError:
        raise FaultSpecError(f"fault spec {spec!r}: bad value for {key}: {raw!r}") from None
    return raw


class FaultQueue(Generic[F]):
    """The faults still to fire, shared between a test's thread and the server's loop.
    ``fault_type`` is checked on ``add`` (a Polygon fault handed to the Alpaca sandbox is a
    mistake worth an error); each fault carries its own ``times``."""

    fault_type: type

    def __init__(self, faults: "tuple[F, ...] | list[F]" = ()) -> None:
        self._lock = threading.Lock()
        self._pending: list[list] = []  # [fault, remaining times]
        for fault in faults:
            self.add(fault)

    def add(self, fault: F) -> None:
        if not isinstance(fault, self.fault_type):
            raise TypeError(f"expected {self.fault_type.__name__}, got {type(fault).__name__}")
        with self._lock:
            self._pending.append([fault, fault.times])  # type: ignore[attr-defined]

    def pending(self) -> list[tuple[F, int]]:
        with self._lock:
            return [(fault, left) for fault, left in self._pending]

    def _take(self, matches: Callable[[F], bool]) -> F | None:
        with self._lock:
            for entry in self._pending:
                if matches(entry[0]):
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._pending.remove(entry)
                    return entry[0]
        return None
