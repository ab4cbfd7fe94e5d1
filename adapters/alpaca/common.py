"""Alpaca facts shared by the execution client, the instrument provider and the factory."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from nautilus_trader.model.identifiers import ClientId

from catalog.instruments import VENUE

ALPACA = "ALPACA"
ALPACA_CLIENT_ID = ClientId(ALPACA)
ALPACA_VENUE = VENUE  # one venue for instruments, backtests and live execution
PAPER_BASE_URL = "https://paper-api.alpaca.markets"
LIVE_BASE_URL = "https://api.alpaca.markets"

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
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"base_url must be http(s)://..., got {base_url!r}")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/stream", "", ""))
