"""Polygon (Massive) market data: historical aggregates, the live data client, the sandbox.

Shaped like NautilusTrader's own adapters: ``config`` (typed settings), ``common`` (protocol
constants), ``parsing`` (pure functions from wire payloads to Sextant/NautilusTrader objects),
``http`` and ``websocket`` (I/O through the official ``massive`` SDK), ``providers``
(instruments), ``data`` (the live data client), ``factories`` (for a TradingNode), ``loader``
(historical bars for catalog ingestion) and ``sandbox`` (a loopback Polygon for tests and
offline rehearsals).
"""
