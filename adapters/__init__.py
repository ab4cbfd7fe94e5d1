"""The edges: where market data comes from (Polygon) and where orders go (Alpaca)."""
