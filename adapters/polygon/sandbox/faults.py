"""Scripted faults: what can go wrong with Polygon, and which request or connection it hits.

Each fault is consumed ``times`` times by the first requests/connections/frames it matches, in
the order the faults were added. Matching is done by a ``FaultSchedule`` that the REST handlers
and the stream hub share, so a test can add a fault from its own thread while the server runs.
"""

from dataclasses import dataclass, fields

from adapters.sandbox_faults import FaultQueue, FaultSpecError, parse_options

REST_KINDS = frozenset({"rate_limit", "server_error", "malformed", "truncated", "stall"})
WS_KINDS = frozenset({"drop", "stall", "refuse"})
TARGETS = ("rest", "ws")


RETRY_AFTER_FORMS = ("seconds", "http_date", "absent", "invalid")


@dataclass(frozen=True)
class Fault:
    """One scripted failure.

    REST (``target="rest"``):
      rate_limit   HTTP 429 and a Polygon error body; ``Retry-After`` in ``retry_after_form``:
                   ``seconds`` (retry_after_secs rounded up to whole seconds: what HTTP and
                   urllib3 accept), ``http_date`` (that long from now on the wall clock),
                   ``absent`` (no header) or ``invalid`` (text no parser reads, as broken
                   proxies send)
      server_error HTTP ``status`` (5xx) with a Polygon error body
      malformed    HTTP 200 whose body is cut in the middle (invalid JSON)
      truncated    HTTP 200, valid JSON, ``resultsCount`` says N but ``results`` holds fewer
                   (the last rows dropped) and ``next_url`` is kept; list endpoints only
      stall        the server waits ``stall_secs`` before answering normally
    ``symbol`` limits a REST fault to one ticker and ``page`` (1-based) to one page of a listing.

    WebSocket (``target="ws"``):
      drop    close the next connection that is sent data, after ``after_messages`` more data
              messages; abnormally (no close frame) unless ``clean``
      stall   the next connection that is sent data gets nothing for ``stall_secs`` real
              seconds; the data of that time is discarded, as in a real outage
      refuse  the next WebSocket handshake is answered with HTTP 503
    """

    kind: str
    target: str = ""  # inferred from ``kind`` when only one target has it
    times: int = 1
    status: int = 503
    retry_after_secs: float = 1.0
    retry_after_form: str = "seconds"
    stall_secs: float = 30.0
    after_messages: int = 0
    clean: bool = False
    symbol: str | None = None
    page: int | None = None

    def __post_init__(self) -> None:
        target = self.target or _infer_target(self.kind)
        object.__setattr__(self, "target", target)
        if target not in TARGETS:
            raise FaultSpecError(f"fault target must be one of {TARGETS}, got {target!r}")
        kinds = REST_KINDS if target == "rest" else WS_KINDS
        if self.kind not in kinds:
            raise FaultSpecError(
                f"{target} fault kind must be one of {sorted(kinds)}, got {self.kind!r}"
            )
        if self.times < 1:
            raise FaultSpecError(f"times must be >= 1, got {self.times}")
        if self.kind == "server_error" and not 500 <= self.status <= 599:
            raise FaultSpecError(f"server_error status must be 5xx, got {self.status}")
        if self.retry_after_secs < 0 or self.stall_secs < 0 or self.after_messages < 0:
            raise FaultSpecError("retry_after_secs, stall_secs and after_messages must be >= 0")
        if self.retry_after_form not in RETRY_AFTER_FORMS:
            raise FaultSpecError(f"retry_after_form must be one of {', '.join(RETRY_AFTER_FORMS)}, "
                                 f"got {self.retry_after_form!r}")
        if self.page is not None and self.page < 1:
            raise FaultSpecError(f"page is 1-based, got {self.page}")
        if target == "ws" and (self.symbol is not None or self.page is not None):
            raise FaultSpecError("symbol= and page= only apply to REST faults")


def _infer_target(kind: str) -> str:
    in_rest, in_ws = kind in REST_KINDS, kind in WS_KINDS
    if in_rest and in_ws:
        raise FaultSpecError(f"fault kind {kind!r} exists for both targets: say target='rest' or 'ws'")
    if not in_rest and not in_ws:
        raise FaultSpecError(
            f"unknown fault kind {kind!r}; expected one of {sorted(REST_KINDS | WS_KINDS)}"
        )
    return "rest" if in_rest else "ws"


_INT_OPTIONS = frozenset({"times", "status", "after_messages", "page"})
_FLOAT_OPTIONS = frozenset({"retry_after_secs", "stall_secs"})
_OPTIONS = frozenset(f.name for f in fields(Fault)) - {"kind", "target"}


def parse_fault(spec: str) -> Fault:
    """Build a Fault from a CLI string such as ``rest:rate_limit:times=2,retry_after_secs=1``.

    The first two ``:``-separated parts are the target and the kind (either order); the optional
    third holds comma-separated ``key=value`` options named like the Fault fields."""
    parts = spec.strip().split(":", 2)
    if len(parts) < 2:
        raise FaultSpecError(f"fault spec {spec!r} must start with target:kind, e.g. rest:rate_limit")
    first, second = parts[0].strip(), parts[1].strip()
    target, kind = (first, second) if first in TARGETS else (second, first)
    if target not in TARGETS:
        raise FaultSpecError(f"fault spec {spec!r}: no target; expected one of {TARGETS}")
    raw_options = parts[2] if len(parts) == 3 else ""
    options = parse_options(spec, raw_options, _OPTIONS, _INT_OPTIONS, _FLOAT_OPTIONS,
                            nullable=frozenset({"symbol", "page"}))
    try:
        return Fault(kind=kind, target=target, **options)  # type: ignore[arg-type]
    except FaultSpecError as e:  # the fault's own checks, said of the spec the user typed
        raise FaultSpecError(f"fault spec {spec!r}: {e}") from None


class FaultSchedule(FaultQueue[Fault]):
    """The faults still to fire, shared between the test thread and the server loop."""

    fault_type = Fault

    def take_rest(self, symbol: str | None, page: int | None, listing: bool) -> Fault | None:
        """Consume the first REST fault matching a request for ``symbol`` at ``page``
        (``page`` is None for requests that are not pages of a listing)."""
        return self._take(
            lambda f: (
                f.target == "rest"
                and (f.symbol is None or f.symbol == symbol)
                and (f.page is None or f.page == page)
                and (f.kind != "truncated" or listing)
            )
        )

    def take_ws(self, kinds: frozenset[str]) -> Fault | None:
        return self._take(lambda f: f.target == "ws" and f.kind in kinds)
