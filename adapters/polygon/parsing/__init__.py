"""Pure functions from Polygon wire payloads to Sextant/NautilusTrader objects (no I/O)."""
