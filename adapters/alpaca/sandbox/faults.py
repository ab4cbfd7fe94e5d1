"""Scripted faults: what can go wrong with Alpaca, and which request, order or event it hits.

Each fault is consumed ``times`` times by the first requests/orders/events it matches, in the
order the faults were added. A ``FaultSchedule`` is shared by the REST middleware, the order
intake and the stream hub, so a test can add a fault from its own thread while the server runs.
"""

from dataclasses import dataclass, fields

from adapters.sandbox_faults import FaultQueue, FaultSpecError, parse_options

REST_KINDS = frozenset({"rate_limit", "server_error", "stall"})
STREAM_KINDS = frozenset({"drop_before_fill", "drop_stream", "reject_auth"})
ORDER_KINDS = frozenset({"reject_next"})
KINDS = REST_KINDS | STREAM_KINDS | ORDER_KINDS
TARGETS = {"rest": REST_KINDS, "stream": STREAM_KINDS, "order": ORDER_KINDS}


RETRY_AFTER_FORMS = ("seconds", "http_date", "absent")


@dataclass(frozen=True)
class AlpacaFault:
    """One scripted failure.

    REST (any endpoint, or only paths starting with ``path``):
      rate_limit        HTTP 429 with ``Retry-After`` (alpaca-py ignores it and sleeps 3 s), in
                        ``retry_after_form``: ``seconds`` (whole), ``http_date`` (the wall-clock
                        time retry_after_secs from now, as real servers and proxies also send
                        it) or ``absent`` (no header)
      server_error      HTTP ``status`` (5xx) with an Alpaca error body
      stall             the server waits ``stall_secs`` before answering normally
    Stream (consumed only by an event some connection listens to):
      drop_before_fill  the next fill or partial_fill is applied to the book, but instead of the
                        event every stream connection is closed (abnormally unless ``clean``):
                        the client must recover the fill by reconciling over REST
      drop_stream       every stream connection is closed right after the next event is sent
      reject_auth       the next ``times`` stream authentications are refused ("unauthorized",
                        then the connection is closed) even with the right key pair, as when a
                        key is revoked or rotated while a client is connected; combine with
                        drop_stream or ``drop_stream()`` to have a reconnect refused
    Order:
      reject_next       the next order is accepted (HTTP 200, status "accepted") and then
                        rejected by a ``rejected`` trade update
    """

    kind: str
    times: int = 1
    status: int = 503
    retry_after_secs: float = 1.0
    retry_after_form: str = "seconds"
    stall_secs: float = 30.0
    path: str | None = None
    clean: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultSpecError(
                f"unknown Alpaca fault kind {self.kind!r}; expected one of {sorted(KINDS)}"
            )
        if self.times < 1:
            raise FaultSpecError(f"times must be >= 1, got {self.times}")
        if self.kind == "server_error" and not 500 <= self.status <= 599:
            raise FaultSpecError(f"server_error status must be 5xx, got {self.status}")
        if self.retry_after_secs < 0 or self.stall_secs < 0:
            raise FaultSpecError("retry_after_secs and stall_secs must be >= 0")
        if self.retry_after_form not in RETRY_AFTER_FORMS:
            raise FaultSpecError(f"retry_after_form must be one of {', '.join(RETRY_AFTER_FORMS)}, "
                                 f"got {self.retry_after_form!r}")
        if self.path is not None and self.kind not in REST_KINDS:
            raise FaultSpecError(f"path= only applies to REST faults, not {self.kind!r}")

    @property
    def target(self) -> str:
        return next(t for t, kinds in TARGETS.items() if self.kind in kinds)


_INT_OPTIONS = frozenset({"times", "status"})
_FLOAT_OPTIONS = frozenset({"retry_after_secs", "stall_secs"})
_OPTIONS = frozenset(f.name for f in fields(AlpacaFault)) - {"kind"}


def parse_alpaca_fault(spec: str) -> AlpacaFault:
    """Build a fault from a CLI string: ``[target:]kind[:key=value,...]``, e.g.
    ``rest:rate_limit:times=2``, ``server_error:status=500,path=/v2/orders``,
    ``stream:drop_before_fill`` or ``order:reject_next``. Targets: rest, stream, order."""
    parts = [p.strip() for p in spec.strip().split(":")]
    target = None
    if parts and parts[0] in TARGETS:
        target = parts.pop(0)
    if not parts or not parts[0]:
        raise FaultSpecError(f"fault spec {spec!r}: no fault kind; expected one of {sorted(KINDS)}")
    kind = parts.pop(0)
    if kind not in KINDS:
        raise FaultSpecError(
            f"fault spec {spec!r}: unknown kind {kind!r}; expected one of {sorted(KINDS)}"
        )
    if target is not None and kind not in TARGETS[target]:
        raise FaultSpecError(
            f"fault spec {spec!r}: {kind!r} is not a {target} fault; "
            f"{target} kinds are {sorted(TARGETS[target])}"
        )
    raw_options = ":".join(parts)
    options = parse_options(spec, raw_options, _OPTIONS, _INT_OPTIONS, _FLOAT_OPTIONS)
    try:
        return AlpacaFault(kind=kind, **options)  # type: ignore[arg-type]
    except FaultSpecError as e:  # the fault's own checks, said of the spec the user typed
        raise FaultSpecError(f"fault spec {spec!r}: {e}") from None


class FaultSchedule(FaultQueue[AlpacaFault]):
    """The faults still to fire, shared between the test thread and the server loop."""

    fault_type = AlpacaFault

    def take_rest(self, path: str) -> AlpacaFault | None:
        return self._take(
            lambda f: f.kind in REST_KINDS and (f.path is None or path.startswith(f.path))
        )

    def take(self, kind: str) -> AlpacaFault | None:
        return self._take(lambda f: f.kind == kind)
