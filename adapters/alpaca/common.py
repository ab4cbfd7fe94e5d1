"""Alpaca facts shared by the execution client, the instrument provider and the factory."""

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit, urlunsplit

from nautilus_trader.model.identifiers import ClientId

from catalog.instruments import VENUE

ALPACA = "ALPACA"
ALPACA_CLIENT_ID = ClientId(ALPACA)
ALPACA_VENUE = VENUE  # one venue for instruments, backtests and live execution
PAPER_HOST = "paper-api.alpaca.markets"
LIVE_HOST = "api.alpaca.markets"
PAPER_BASE_URL = f"https://{PAPER_HOST}"
LIVE_BASE_URL = f"https://{LIVE_HOST}"
ALPACA_DOMAIN = "alpaca.markets"
PAPER_KEY_PREFIX = "PK"  # Alpaca issues paper key ids as PK..., live ones as AK...

# First pair wins: the names Sextant documents, then the ones Alpaca's own tools read.
KEY_ENV_VARS = (
    ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY"),
    ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"),
)


class MissingCredentialsError(RuntimeError):
    """No Alpaca key pair in the environment."""


@dataclass(frozen=True)
class AlpacaCredentials:
    """An API key pair. ``repr`` hides both halves: a credentials object that ends up in a
    log line or a traceback's locals must not leak them."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)


def credentials_from_env(environ: Mapping[str, str] = os.environ) -> AlpacaCredentials:
    """The key pair from ALPACA_API_KEY_ID/ALPACA_API_SECRET_KEY, else
    APCA_API_KEY_ID/APCA_API_SECRET_KEY. Keys never go in configs: a node prints its config
    at start-up, not its environment. A half-set pair is an error, not a fallthrough, so a
    typo in one name cannot silently select the other account."""
    for key_var, secret_var in KEY_ENV_VARS:
        key, secret = environ.get(key_var), environ.get(secret_var)
        if key and secret:
            return AlpacaCredentials(key, secret)
        if key or secret:
            missing = secret_var if key else key_var
            raise MissingCredentialsError(f"{missing} is not set (its pair is)")
    names = " or ".join(f"{k}/{s}" for k, s in KEY_ENV_VARS)
    raise MissingCredentialsError(f"set {names} (in the environment or an untracked .env)")


def stream_url_for(base_url: str) -> str:
    """The trade_updates WebSocket that belongs to a REST endpoint: Alpaca serves it at
    ``/stream`` on the same host (wss for https, ws for a plain-http loopback sandbox)."""
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme.lower() not in ("http", "https"):
        raise AlpacaEndpointError(f"base_url must be http(s)://..., got {base_url!r}")
    scheme = "wss" if parts.scheme.lower() == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/stream", "", ""))


class AlpacaEndpointError(ValueError):
    """An Alpaca endpoint or key that must not be used; the message says why. A ValueError
    because msgspec reports a ValueError raised in a config's ``__post_init__`` as the
    config's own validation error."""


class EndpointKind(Enum):
    """Which account an endpoint reaches, decided from its host alone."""

    PAPER = "paper"
    LIVE = "live"
    LOOPBACK = "loopback"  # a sandbox on this machine
    CUSTOM = "custom"  # only with allow_custom_host: a proxy or a test server elsewhere


_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def classify_endpoint(url: str, *, allow_custom_host: bool = False, stream: bool = False) -> EndpointKind:
    """The account ``url`` trades, from its parsed host: case, port, scheme and a trailing
    slash or dot do not change it. This is the one place Sextant decides paper or live.

    What a client library could read differently from this parser is refused rather than
    guessed: whitespace, non-ASCII (an internationalised spelling can resolve to another
    host), user info (``paper-api...@api...`` goes to the host after the ``@``), percent
    escapes, a query or fragment, and a path on a REST root (the SDK appends ``/v2/...``
    itself). An Alpaca host other than the two trading APIs, and any non-loopback host
    unless ``allow_custom_host``, are refused. ``stream``: a trade_updates WebSocket URL
    (ws/wss, any path) instead of a REST root (http/https, no path)."""
    if not isinstance(url, str) or not url:
        raise AlpacaEndpointError(f"an Alpaca URL must be a non-empty string, got {url!r}")
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise AlpacaEndpointError(f"{url!r} contains whitespace, control or non-ASCII characters")
    schemes = ("ws", "wss") if stream else ("http", "https")
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise AlpacaEndpointError(f"{url!r} must start with {' or '.join(s + '://' for s in schemes)}")
    if "@" in parts.netloc:
        raise AlpacaEndpointError(f"{url!r} holds user info ('...@'): the request would go to the host after "
                                  "the '@'; give the host alone")
    if "%" in url or parts.query or parts.fragment or "?" in url or "#" in url:
        raise AlpacaEndpointError(f"{url!r} must not hold escapes, a query or a fragment")
    if not stream and parts.path not in ("", "/"):
        raise AlpacaEndpointError(f"{url!r} must be the REST root without a path such as /v2 "
                                  f"(e.g. {PAPER_BASE_URL}): the SDK adds /v2/... itself")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError as e:
        raise AlpacaEndpointError(f"{url!r}: {e}") from e
    host = (parts.hostname or "").removesuffix(".")  # "api.alpaca.markets." is the same host
    if host == LIVE_HOST:
        return EndpointKind.LIVE
    if host == PAPER_HOST:
        return EndpointKind.PAPER
    if host == "localhost" or _is_loopback_ip(host):
        return EndpointKind.LOOPBACK
    if not (_HOSTNAME.fullmatch(host) or _is_ip(host)):
        raise AlpacaEndpointError(f"{url!r} has no valid host")
    if host == ALPACA_DOMAIN or host.endswith("." + ALPACA_DOMAIN):
        raise AlpacaEndpointError(f"{url!r} is an Alpaca host but neither the paper ({PAPER_HOST}) nor the "
                                  f"live ({LIVE_HOST}) trading API")
    if not allow_custom_host:
        raise AlpacaEndpointError(f"{url!r} is neither Alpaca's paper host ({PAPER_HOST}), its live host "
                                  f"({LIVE_HOST}) nor loopback; set allow_custom_host to use another host")
    return EndpointKind.CUSTOM


def check_endpoints(base_url: str, stream_url: str | None, *, paper: bool,
                    allow_custom_host: bool = False) -> EndpointKind:
    """The kind of ``base_url`` once it (and ``stream_url``, when given) is known to fit the
    account the operator means: paper never reaches the live host, live reaches only it, and
    REST and stream reach the same kind of endpoint."""
    kind = classify_endpoint(base_url, allow_custom_host=allow_custom_host)
    if paper and kind is EndpointKind.LIVE:
        raise AlpacaEndpointError(f"paper trading, but {base_url!r} is Alpaca's live (real-money) host {LIVE_HOST}")
    if not paper and kind is not EndpointKind.LIVE:
        raise AlpacaEndpointError(f"live trading needs Alpaca's live host {LIVE_BASE_URL}, not {base_url!r}")
    if stream_url is not None:
        stream_kind = classify_endpoint(stream_url, allow_custom_host=allow_custom_host, stream=True)
        if stream_kind is not kind:
            raise AlpacaEndpointError(f"stream_url {stream_url!r} reaches a {stream_kind.value} endpoint but "
                                      f"base_url {base_url!r} a {kind.value} one")
    return kind


def check_key(key_id: str, *, paper: bool, kind: EndpointKind) -> None:
    """The key must belong to the account the mode names. A loopback sandbox accepts
    whatever keys it was started with, so only there may a paper run use a non-PK key."""
    is_paper_key = key_id.strip().upper().startswith(PAPER_KEY_PREFIX)  # "pk..." is no live key either
    if paper and not is_paper_key and kind is not EndpointKind.LOOPBACK:
        raise AlpacaEndpointError(f"paper trading, but the Alpaca key is not a paper key (paper key ids start "
                                  f"with {PAPER_KEY_PREFIX}); set the paper key pair")
    if not paper and is_paper_key:
        raise AlpacaEndpointError(f"live trading, but the Alpaca key is a paper key ({PAPER_KEY_PREFIX}...); "
                                  "set the live key pair")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback_ip(host: str) -> bool:
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback
