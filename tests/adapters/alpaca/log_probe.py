"""Run by test_log_secrets.py in a fresh process: everything the Alpaca adapter logs or raises
(NautilusTrader's logger at DEBUG, Python logging at DEBUG, error messages) goes to this
process's stdout/stderr, which the test captures whole.

A process of its own because NautilusTrader's Rust logger is initialised once per process:
inside the test suite an earlier node would already have fixed its level and sinks.

Usage: python -m tests.adapters.alpaca.log_probe CATALOG KEY_ID SECRET_KEY
"""

import asyncio
import logging
import os
import random
import sys

import msgspec
import pandas as pd
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce
from nautilus_trader.model.objects import Quantity

from adapters.alpaca.common import AlpacaCredentials
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.http import AlpacaApiError, AlpacaHttpClient
from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from tests.adapters.alpaca.test_execution import NOW, S000, ExecNode, client_config


def main(catalog: str, key_id: str, secret_key: str) -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
    os.environ["ALPACA_API_KEY_ID"], os.environ["ALPACA_API_SECRET_KEY"] = key_id, secret_key
    with AlpacaSandbox(CatalogMarket(catalog), key_id=key_id, secret_key=secret_key) as sandbox:
        sandbox.advance_to(pd.Timestamp(NOW))
        node = ExecNode(client_config(sandbox))
        node._config = msgspec.structs.replace(node._config, logging=LoggingConfig(log_level="DEBUG"))
        with node:
            filled = node.submit(lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(3), TimeInForce.DAY))
            node.wait_status(filled.client_order_id, OrderStatus.FILLED)
            refused = node.submit(  # 403 insufficient buying power: the refusal is logged
                lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(10_000_000), TimeInForce.DAY)
            )
            node.wait_status(refused.client_order_id, OrderStatus.REJECTED)
        wrong = AlpacaHttpClient(
            AlpacaCredentials(key_id, secret_key + "-wrong"),
            AlpacaExecClientConfig(base_url=sandbox.base_url, request_timeout_secs=2.0),
            rng=random.Random(1),
        )
        try:
            asyncio.run(wrong.get_account())
        except AlpacaApiError as exc:  # Alpaca answers a wrong secret with 403
            print(f"wrong secret refused: {exc}")
        finally:
            wrong.close()
    print("probe done")


if __name__ == "__main__":
    main(*sys.argv[1:])
