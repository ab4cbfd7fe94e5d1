"""Alpaca execution: the live execution client, instruments from /v2/assets, the sandbox broker.

Shaped like NautilusTrader's execution adapters: ``config``, ``common``, ``parsing`` (pure
functions between Alpaca JSON and NautilusTrader orders, events and reports), ``http`` and
``stream`` (I/O through the official ``alpaca-py`` SDK, off the event-loop thread),
``providers``, ``execution``, ``factories``, and ``sandbox`` (a loopback paper broker).
"""
