"""Pure translations between Alpaca's JSON and NautilusTrader: request bodies from orders
(``orders``), typed views of the wire (``wire``), reports (``reports``), and the per-order
bookkeeping that turns venue snapshots and trade updates into events exactly once
(``progress``). No I/O here."""
